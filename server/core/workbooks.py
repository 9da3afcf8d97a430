"""What an uploaded XLSX may unpack to, read from its zip directory before anything unpacks: one
rule for rosters, ledgers, user lists and XLSForms (a sharedStrings bomb fits in a few KB)."""

import io
import zipfile

XLSX_MAX_PARTS = 1000            # files inside the workbook's zip
XLSX_MAX_PART_BYTES = 16 << 20   # any one part (a sheet, sharedStrings) unpacked
XLSX_MAX_TOTAL_BYTES = 40 << 20  # every part together unpacked


def too_large(data):
    """(zh, en) when the workbook's parts would unpack past the caps, else None (zipfile enforces
    each entry's declared size: a lie fails its CRC). Not a zip at all: None, the reader says so."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return None
    total = sum(i.file_size for i in infos)
    if (len(infos) > XLSX_MAX_PARTS or total > XLSX_MAX_TOTAL_BYTES
            or any(i.file_size > XLSX_MAX_PART_BYTES for i in infos)):
        return (f"XLSX 表格解压后过大（上限 {XLSX_MAX_TOTAL_BYTES >> 20} MB），请删去多余的工作表和格式，"
                f"或另存为 CSV。",
                f"The XLSX workbook is too large once unpacked (at most {XLSX_MAX_TOTAL_BYTES >> 20} MB); "
                f"remove extra sheets and formatting, or save it as CSV.")
    return None
