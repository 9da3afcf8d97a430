"""The words of the domain, in Chinese and English, written once: what a village, a township, a
household's phone or a signed contract is called wherever the server writes it (pages, exports,
the profile PDF). Words that belong to one page stay on that page; form labels come from the forms.
"""

WORDS = {
    # places
    "village": ("村", "Village"),
    "township": ("乡镇", "Township"),
    "county": ("县", "County"),
    "households": ("农户", "Households"),
    # a household
    "group": ("组别", "Group"),
    "address": ("地址", "Address"),
    "phone": ("电话", "Phone"),
    "name": ("姓名", "Name"),
    # answers and states
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "signed": ("已签", "signed"),
    "unsigned": ("未签", "not signed"),
    "approved": ("已通过", "Approved"),
    "saved": ("已保存。", "Saved."),
}


def pair(key):
    """(zh, en) of a word."""
    return WORDS[key]


def yes_no(value):
    return WORDS["yes"] if value else WORDS["no"]


def signed(value):
    return WORDS["signed"] if value else WORDS["unsigned"]
