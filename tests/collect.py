"""What ODK Collect sends, for the OpenRosa tests and bench/sync_bench.py: its headers and an
instance of the PV form as Collect writes it."""

import uuid as uuidlib

COLLECT_HEADERS = {"X-OpenRosa-Version": "1.0", "User-Agent": "org.odk.collect.android/v2024.3.0"}


def pv_instance(household="v1-0001", instance_id=None, notes="好", signature=None, interested="no",
                form="pv_enrollment", version="2", time_end="2026-05-01T10:00:00.000+08:00"):
    """An instance of the PV form as Collect writes it: every node, empty ones too."""
    instance_id = instance_id or f"uuid:{uuidlib.UUID(int=1)}"
    sig = f"<signature>{signature}</signature>" if signature else "<signature/>"
    end = f"<orx:timeEnd>{time_end}</orx:timeEnd>" if time_end else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" '
            f'id="{form}" version="{version}"><household_id>{household}</household_id>'
            f'<section_intent><interested>{interested}</interested><consent/></section_intent>'
            f'<section_roof><roof_type/><roof_area_m2/><orientation/><shading/><structure_ok/>'
            f'<roof_photo_1/><roof_photo_2/></section_roof>'
            f'<section_plan><capacity_kw/><expected_kwh_year/><funding_mode/><grid_stage/></section_plan>'
            f'<section_lecture><lecture_attended>yes</lecture_attended><lecture_date>2026-04-20</lecture_date>'
            f'</section_lecture><section_confirm><location>28.1 113.2 50 5</location>{sig}'
            f'<notes>{notes}</notes></section_confirm>'
            f'<orx:meta><orx:instanceID>{instance_id}</orx:instanceID>{end}</orx:meta></data>').encode()
