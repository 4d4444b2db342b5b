"""Offices and contests: level, role and district from keyword and regex tables.

"State House District 15" and "California State Assembly District 15" both become (state, lower_chamber, 15);
"NC SUPERIOR COURT JUDGE DISTRICT 10A SEAT 02" becomes (judicial, judge, 10A). The tables are data: the first
matching row wins, so more specific phrases come first. Unknown offices get None, never a guess.
"""

from __future__ import annotations

import re

# (pattern, level), checked in order.
LEVELS = [
    (r"\b(JUDGE|JUSTICE|COURT|MAGISTRATE|DISTRICT ATTORNEY|PUBLIC DEFENDER)\b", "judicial"),
    (
        r"\b(U\.?\s?S\.?|UNITED STATES|US)\s+(HOUSE|SENATE|REPRESENTATIVE|SENATOR|CONGRESS)|\bCONGRESS(IONAL)?\b|"
        r"\bPRESIDENT(IAL)?\b(?!.*\b(BOARD|COUNCIL|COMMISSION)\b)",
        "federal",
    ),
    (r"\bSCHOOLS?\b|\bBOARD OF EDUCATION\b|\bBD OF EDU|\bEDUCATION\b", "school_district"),
    (
        r"\bSOIL AND WATER\b|\bWATER\b|\bSANITARY\b|\bSANITATION\b|\bFIRE DISTRICT\b|\bHOSPITAL\b|\bUTILIT|\bCONSERVATION\b|"
        r"\bAIRPORT\b|\bTRANSIT\b|\bLIBRARY DISTRICT\b",
        "special_district",
    ),
    # "TOWN OF AYDEN BOARD OF COMMISSIONERS" is a town board, not the county's.
    (r"^(CITY|TOWN|VILLAGE) OF\b", "municipal"),
    (
        r"\bSTATE\b|\bGOVERNOR\b|\bATTORNEY GENERAL\b|\bSECRETARY OF STATE\b|\bASSEMBLY\b|\bLEGISLAT|"
        r"\b[A-Z]{2} (HOUSE|SENATE)\b|\bSUPERINTENDENT OF PUBLIC INSTRUCTION\b|"
        r"\bCOMMISSIONER OF (AGRICULTURE|INSURANCE|LABOR)\b|\bTREASURER\b|\bAUDITOR\b",
        "state",
    ),
    (
        r"\bCOUNTY\b|\bSHERIFF\b|\bREGISTER OF DEEDS\b|\bCORONER\b|\bPARISH\b|\bBOROUGH\b|"
        r"\bB(OAR)?D OF COMMISSIONERS\b",
        "county",
    ),
    (r"\bCITY\b|\bTOWN\b|\bVILLAGE\b|\bMAYOR\b|\bALDERM[AE]N\b|\bCOUNCIL\b|\bMUNICIPAL\b|\bTOWNSHIP\b", "municipal"),
]
# (pattern, role), checked in order.
ROLES = [
    (r"\bLIEUTENANT GOVERNOR\b", "lieutenant_governor"),
    (r"\bGOVERNOR\b", "governor"),
    (r"\bPRESIDENT(IAL)?\b", "president"),
    (r"\bMAYOR\b", "mayor"),
    (r"\bSENATE\b|\bSENATOR\b", "upper_chamber"),
    (r"\bHOUSE\b|\bREPRESENTATIVE\b|\bASSEMBLY\b|\bDELEGATES\b", "lower_chamber"),
    (r"\bJUDGE\b|\bJUSTICE\b|\bMAGISTRATE\b", "judge"),
    (r"\bDISTRICT ATTORNEY\b", "district_attorney"),
    (r"\bSHERIFF\b", "sheriff"),
    (r"\bCLERK\b", "clerk"),
    (r"\bREGISTER OF DEEDS\b", "register_of_deeds"),
    (r"\bBOARD OF EDUCATION\b|\bBD OF EDU|\bSCHOOL BOARD\b|\bSCHOOLS?\b", "school_board"),
    (r"\bCOUNCIL\w*|\bALDERM[AE]N\b", "council"),
    (r"\bCOMMISSIONERS?\b|\bCOMMISSION\b", "commissioner"),
    (r"\bSUPERVISORS?\b", "supervisor"),
    (r"\bATTORNEY GENERAL\b", "attorney_general"),
    (r"\bSUPERINTENDENT\b", "superintendent"),
    (r"\bSECRETARY OF STATE\b", "secretary_of_state"),
    (r"\bTREASURER\b", "treasurer"),
    (r"\bAUDITOR\b", "auditor"),
    (r"\bTRUSTEES?\b", "trustee"),
    (r"\bBOARD\b|\bDIRECTORS?\b", "board_member"),
]
ROMAN = {"I": "1", "II": "2", "III": "3", "IV": "4", "V": "5", "VI": "6", "VII": "7", "VIII": "8", "IX": "9", "X": "10"}
DISTRICT = [
    re.compile(r"\bDIST(?:RICT|\.)?\s*(?:NO\.?|NUMBER|#)?\s*0*(\d+[A-Z]?|[IVX]{1,4})\b"),
    re.compile(r"\b0*(\d+)(?:ST|ND|RD|TH)\s+(?:CONGRESSIONAL\s+|SENATORIAL\s+|JUDICIAL\s+)?DISTRICT\b"),
    re.compile(r"\b(?:WARD|PRECINCT|ZONE|AREA)\s*(?:NO\.?|#)?\s*0*(\d+[A-Z]?)\b"),
]
_LEVELS = [(re.compile(p), v) for p, v in LEVELS]
_ROLES = [(re.compile(p), v) for p, v in ROLES]
OFFICE_FIELDS = ["office_level", "office_role", "office_district"]


def parse_office(raw: str | None) -> dict:
    """{'office_level', 'office_role', 'office_district'} of an office or contest name."""
    out = dict.fromkeys(OFFICE_FIELDS)
    if raw is None or not str(raw).strip():
        return out
    text = " ".join(str(raw).upper().replace("-", " ").split())
    out["office_level"] = next((v for p, v in _LEVELS if p.search(text)), None)
    out["office_role"] = next((v for p, v in _ROLES if p.search(text)), None)
    district = next((m.group(1) for rx in DISTRICT if (m := rx.search(text))), None)
    out["office_district"] = ROMAN.get(district, district)
    return out
