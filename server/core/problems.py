"""Every error the server can answer, in one catalogue (ODK Central's lib/util/problem.js is the
model): a code, an HTTP status and a text in Chinese and English. Domain code raises
`Problem("household_not_found")`; errors.py turns it into JSON for the API or a page for people, in
one place. Nothing here knows Flask.
"""

# key: (HTTP status, zh, en[, code]). The key is the code clients see unless a fourth element names
# another (several record kinds answer the one code "not_found", worded for each). Texts may name
# {placeholders} filled from Problem(..., name=value).
CATALOGUE = {
    # the request itself
    "bad_body": (400, "请求体格式不正确：应为 {shape}", "The body has the wrong shape: expected {shape}"),
    "bad_parameter": (400, "参数 {name} 不正确：{reason_zh}", "Parameter {name} is not valid: {reason_en}"),
    "too_large": (413, "内容太大（上限 {limit}）。", "The body is too large (at most {limit})."),
    "too_many_items": (413, "一批最多 {limit} 条。", "At most {limit} items per batch."),
    "csrf": (400, "安全令牌缺失或已过期，请刷新页面后重试。",
             "The security token is missing or expired; reload the page and retry."),
    "invalid": (400, "内容有误，请检查标出的项目。", "Some values are not valid; see the fields named."),
    # accounts
    "login_required": (401, "请先登录。", "Please log in first."),
    "bad_login": (401, "用户名或密码不正确。", "Wrong username or password."),
    "too_many_attempts": (429, "登录失败次数过多，请 {wait} 秒后再试。",
                          "Too many failed logins; try again in {wait} s."),
    "account_inactive": (401, "该账号已停用，请联系管理员。",
                         "This account is deactivated; ask an administrator."),
    "forbidden": (403, "没有权限。", "You are not allowed to do this."),
    # records
    "not_found": (404, "找不到该内容。", "Not found."),
    "household_not_found": (404, "找不到该农户，或不在你的范围内。", "No such household in your scope.", "not_found"),
    "village_not_found": (404, "找不到该村，或不在你的范围内。", "No such village in your scope.", "not_found"),
    "submission_not_found": (404, "找不到该记录，或不在你的范围内。", "No such submission in your scope.", "not_found"),
    "user_not_found": (404, "找不到该用户。", "No such user.", "not_found"),
    "form_not_found": (404, "没有这个表单或版本。", "No such form or form version.", "not_found"),
    "job_not_found": (404, "找不到该打印任务。", "Print job not found.", "not_found"),
    # reviews
    "review_superseded": (409, "该记录已被更正（{by}），请审核更正后的记录。",
                          "This submission was corrected by {by}; review the correction instead.",
                          "superseded"),
    # attachments
    "bad_attachment_name": (400, "附件名称不合法。", "Bad attachment name.", "bad_name"),
    "attachment_not_declared": (404, "该记录没有声明这个附件。", "The submission declares no such attachment.", "not_declared"),
    "checksum_mismatch": (400, "附件校验失败，请重新上传。",
                          "The checksum does not match the bytes; upload again."),
    "attachment_not_as_declared": (409, "附件与提交时声明的不一致。",
                                   "The attachment differs from what the submission declared.", "not_as_declared"),
    "attachment_bad_type": (415, "附件内容不是声明的图片类型。",
                            "The attachment's content is not the declared image type.", "bad_type"),
    "image_too_large": (413, "图片像素过多（上限 {limit} 百万像素）。",
                        "The image has too many pixels (at most {limit} megapixels)."),
    "image_too_complex": (413, "图片编码过于复杂（渐进式 JPEG 扫描过多或尺寸过大），请用手机拍照后重新上传。",
                          "The image is too costly to decode (a progressive JPEG with too many scans or "
                          "pixels); take the photo on the phone and upload it again."),
    "image_unreadable": (415, "图片无法读取（文件损坏或不完整），请重新拍摄或上传。",
                         "The image cannot be read (damaged or incomplete); take or upload it again."),
    # OpenRosa (ODK Collect, Enketo): web/openrosa.py answers these as OpenRosa XML
    "openrosa_no_instance": (400, "缺少提交文件 xml_submission_file。", "No xml_submission_file in the request."),
    "openrosa_not_xml": (400, "提交的 XML 格式不正确：{reason}", "The submitted XML is not well formed: {reason}"),
    "openrosa_doctype": (400, "提交的 XML 不能包含 DOCTYPE 或实体声明。",
                         "The submitted XML may not hold a DOCTYPE or entity declarations."),
    "openrosa_unknown_form": (400, "没有这个表单或版本：{form} {version}。",
                              "No such form or form version: {form} {version}.", "unknown_form"),
    "openrosa_undeclared": (400, "附件 {name} 不在提交内容的答案中。",
                            "The attachment {name} is not named by any answer of the submission.",
                            "attachment_not_declared"),
    "openrosa_missing_file": (400, "答案引用的附件 {name} 没有随提交上传。",
                              "The attachment {name} named by an answer was not sent with the submission.",
                              "attachment_missing"),
    "openrosa_invalid": (400, "提交内容有误：{detail_zh}", "The submission is not valid: {detail_en}", "invalid"),
    "openrosa_conflict": (409, "该 instanceID 已用于其他内容。",
                          "This instanceID was already used with other content.", "conflict"),
    "device_unknown": (401, "设备密钥无效或已撤销，请重新扫描二维码。",
                       "The device key is unknown or revoked; scan a new QR code.", "login_required"),
    "basic_needs_https": (403, "用户名密码登录只能通过 HTTPS 使用；请改用 HTTPS 地址或设备二维码。",
                          "Username and password are accepted over HTTPS only; use the https:// address "
                          "or a device QR code.", "https_required"),
    # printing
    "bad_lang": (400, "语言须为 zh 或 en。", "The language must be zh or en."),
    "bad_format": (400, "格式须为 {allowed}。", "The format must be {allowed}."),
    "print_not_ready": (409, "打印任务尚未完成。", "The print job has not finished.", "not_ready"),
    "print_gone": (404, "文件已被删除，请重新打印。", "The file is gone; print again.", "not_found"),
    "print_stale": (409, "部分档案已更新，请重新打印。", "Some profiles changed since; print again.", "stale"),
    "busy": (503, "服务器正忙，请 {retry_after} 秒后重试。", "The server is busy; retry in {retry_after} s."),
    # the store
    "partition_unavailable": (503, "村 {partition} 的数据文件无法读取，已原样保留待修复；其他村不受影响。",
                              "The data file of village {partition} cannot be read; it is kept as it "
                              "is for repair. Other villages are not affected."),
    "database_unavailable": (503, "数据库暂时无法访问，未写入任何内容，请 {retry_after} 秒后重试。",
                             "The database cannot be reached right now; nothing was written. Retry in "
                             "{retry_after} s."),
    "storage_full": (503, "服务器磁盘已满，未写入任何内容，请 {retry_after} 秒后重试，并请通知管理员。",
                     "The server's disk is full; nothing was written. Retry in {retry_after} s, and "
                     "tell an administrator."),
    # restore
    "backup_unusable": (400, "该备份无法恢复，未做任何更改：{reason_zh}",
                        "This backup cannot be restored; nothing was changed: {reason_en}"),
    "restore_on_database": (409, "使用 PostgreSQL 数据库时请用命令恢复：停止各服务器后运行 flask --app server restore 备份。"
                                 "未做任何更改。",
                            "On PostgreSQL restore with the command: stop the servers, then run "
                            "flask --app server restore BACKUP. Nothing was changed."),
    "restore_needs_stop": (409, "服务器正在运行：请先停止服务器再从命令行恢复，或在管理页面 /admin/backup 恢复。",
                           "The server is running: stop it before restoring from the command line, or "
                           "restore on the admin page /admin/backup."),
    # tests only
    "test_fault": (503, "测试故障。", "Injected test fault."),
    "internal_error": (500, "服务器内部错误，已记录。", "Internal server error; it has been logged."),
}

# Statuses werkzeug raises itself (routing, methods, body limits), worded like the rest.
HTTP_TEXTS = {
    400: ("bad_request", "请求格式不正确。", "The request is malformed."),
    401: ("login_required", "请先登录。", "Please log in first."),
    403: ("forbidden", "没有权限。", "You are not allowed to do this."),
    404: ("not_found", "找不到该内容。", "Not found."),
    405: ("method_not_allowed", "不支持该请求方法。", "Method not allowed."),
    409: ("conflict", "与现有数据冲突。", "Conflicts with existing data."),
    413: ("too_large", "内容太大。", "The body is too large."),
    415: ("unsupported_type", "不支持的内容类型。", "Unsupported content type."),
    429: ("too_many_requests", "尝试次数过多，请稍后再试。", "Too many attempts; try again later."),
}

MAX_FIELD_ERRORS = 50


class Problem(Exception):
    """A catalogued error. `extra` adds fields to the JSON reply (e.g. errors=[...])."""

    def __init__(self, code, *, extra=None, **params):
        status, zh, en, *wire = CATALOGUE[code]
        self.key, self.code, self.status = code, (wire[0] if wire else code), status
        self.zh, self.en = zh.format(**params), en.format(**params)
        self.extra = dict(extra or {})
        super().__init__(f"{code}: {self.en}")


def field_error(field, zh, en):
    """One problem with one named field, as every list of field errors carries it."""
    return {"field": field, "zh": zh, "en": en}


def bounded(errors, limit=MAX_FIELD_ERRORS):
    """At most `limit` errors and how many there were: a reply never grows with what was sent."""
    return list(errors[:limit]), len(errors)


def invalid(errors, code="invalid"):
    """The Problem for a list of field errors [{"field", "zh", "en"}]."""
    shown, total = bounded(errors)
    return Problem(code, extra={"errors": shown, "errors_total": total})
