"""The land ledger's words in both languages: states, and the stats' figures. One place, so the
pages, the PDFs and the export say the same thing."""

STATE_LABELS = {
    "not_started": ("未开始", "Not started"),
    "surveyed": ("已勘测", "Surveyed"),
    "boundaries_confirmed": ("四至已确认", "Boundaries confirmed"),
    "publicised": ("公示中", "Publicised"),
    "objected": ("有异议", "Objected"),
    "signed": ("已签字", "Signed"),
    "away": ("外出", "Away"),
    "confirmed_remote": ("远程确认", "Confirmed from afar"),
}
FIGURE_LABELS = {
    "households": ("户数", "Households"),
    "plots": ("地块", "Plots"),
    "area_mu": ("面积（亩）", "Area (mu)"),
    "boundaries_confirmed": ("四至已确认", "Boundaries confirmed"),
    "publicised": ("已公示", "Publicised"),
    "objections_open": ("异议未结", "Open objections"),
    "signed": ("已签字", "Signed"),
    "away": ("外出", "Away"),
    "confirmed_remote": ("远程确认", "Confirmed from afar"),
    "not_started": ("未开始", "Not started"),
}


def state_label(state):
    from server.core.i18n import tr
    zh, en = STATE_LABELS.get(state or "not_started", (state, state))
    return tr(zh, en)
