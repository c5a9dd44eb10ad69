"""lendseg import-sba (dagster_project/tools/sba_import.py): real SBA loans onto landing contract v1."""

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import LENDSEG

from dagster_project.defs.ingest import contract
from dagster_project.lib.settings import PROJECT_ROOT
from dagster_project.tools.sba_import import map_naics, naics_mapping, parse_amount, parse_date

SAMPLE = Path("/work/shared/data/sba/sba_loans_sample.csv")
HEADER = (
    "LoanNr_ChkDgt,Name,City,State,Zip,Bank,BankState,NAICS,ApprovalDate,ApprovalFY,Term,NoEmp,NewExist,"
    "CreateJob,RetainedJob,FranchiseCode,UrbanRural,RevLineCr,LowDoc,ChgOffDate,DisbursementDate,"
    "DisbursementGross,MIS_Status,ChgOffPrinGr,GrAppv,SBA_Appv"
)
ROWS = [
    "1000014003,ZEBRA HOBBYCRAFT,EVANSVILLE,IN,47711,FIFTH THIRD BANK,OH,451120,2/28/1997,1997,84,4,2,0,0,1,0,N,Y,,"
    "2/28/1999,60000,P I F,0,60000,48000",
    "1000024006,ZEBRA HOBBYCRAFT,EVANSVILLE,IN,47711,FIFTH THIRD BANK,OH,451120,6/30/1997,1997,60,5,1,0,0,1,0,Y,N,"
    '3/3/2001,7/1/1997,"$40,000.00 ",CHGOFF,"$12,345.00 ",40000,20000',
    "1000034009,QUOKKA DENTAL LLC,BLOOMINGTON,IN,47401,1ST SOURCE BANK,IN,621210,28-Feb-97,1997,180,16,1,0,0,1,0,N,N,"
    ",,287000,P I F,0,287000,215250",
    "1000044001,WOMBAT TOOLS INC,BROKEN ARROW,OK,74012,BANK OF AMERICA,NC,0,3/1/2006,2006,60,2,1,0,0,1,1,N,N,,"
    "3/31/2006,35000,P I F,0,35000,28000",
]


def test_parsers_and_naics_mapping() -> None:
    assert parse_amount(pd.Series(["$60,000.00 ", "60000", ""])).tolist()[:2] == [60000.0, 60000.0]
    d = parse_date(pd.Series(["2/28/1997", "28-Feb-97", "1-Jan-14"]))
    assert [x.strftime("%Y-%m-%d") for x in d] == ["1997-02-28", "1997-02-28", "2014-01-01"]
    m = map_naics(pd.Series(["451120", "722410", "541511", "0", "", "311811", "999999"]), naics_mapping())
    assert m.tolist() == ["F52", "H62", "I65", None, None, "C", None]
    seed = pd.read_csv(PROJECT_ROOT / "dbt" / "seeds" / "naics_gbt4754.csv", dtype=str)
    sections = set(pd.read_csv(PROJECT_ROOT / "dbt" / "seeds" / "industry_sections.csv").section_code)
    assert seed.naics_prefix.is_unique and set(seed.gbt4754_code.str[0]) <= sections


def _run_import(tmp_path: Path, csv: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            LENDSEG,
            "import-sba",
            str(csv),
            "--out",
            str(tmp_path / "landing"),
            "--truth",
            str(tmp_path / "truth" / "sba.csv"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )


def _landing_text(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((tmp_path / "landing").rglob("*.csv")))


def test_outcomes_and_pii_never_reach_the_landing_zone(tmp_path: Path) -> None:
    csv = tmp_path / "sba.csv"
    csv.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n")
    _run_import(tmp_path, csv)
    text = _landing_text(tmp_path)
    for secret in (
        "ZEBRA",
        "QUOKKA",
        "WOMBAT",
        "47711",
        "47401",
        "74012",
        "EVANSVILLE",
        "FIFTH THIRD",
        "CHGOFF",
        "P I F",
        "12345",
        "2001-03-03",
        "MIS_Status",
        "ChgOff",
    ):
        assert secret not in text, secret
    land = tmp_path / "landing"
    clients = pd.read_csv(next((land / "clients").glob("*.csv")), dtype=str)
    assert list(clients.columns) == [c.name for c in contract.SOURCES["clients"].columns]
    assert len(clients) == 3  # one client per borrower (Name, Zip): the two ZEBRA loans are one client
    ind = clients.set_index("client_id").industry_code
    assert ind["SBA1000014003"] == "F52" and ind["SBA1000034009"] == "Q" and pd.isna(ind["SBA1000044001"])
    assert clients[["legal_name", "province_code", "annual_revenue", "founded_date"]].isna().all().all()  # not invented
    bureau = pd.concat(pd.read_csv(p, dtype=str) for p in (land / "credit_bureau").glob("*.csv"))
    assert bureau.bureau_score.isna().all() and len(bureau) == 4
    z = bureau.set_index("report_id")
    assert float(z.loc["SBA-1000024006", "total_debt"]) == pytest.approx(40000 * 7.10)
    assert z.loc["SBA-1000024006", "inquiries_6m"] == "1"  # the borrower's approval 4 months earlier
    usage = pd.concat(pd.read_csv(p, dtype=str) for p in (land / "product_usage").glob("*.csv"))
    assert set(usage.product_code) == {"term_loan", "revolving_credit"} and (usage.days_past_due == "0").all()
    assert list(usage.columns) == [c.name for c in contract.SOURCES["product_usage"].columns]  # contract v1.1
    terms = usage.set_index("account_id").term_months
    rows = pd.read_csv(csv, dtype=str).set_index("LoanNr_ChkDgt").Term
    assert all(terms[f"SBA-{n}"] == rows[n] for n in rows.index if f"SBA-{n}" in terms)  # SBA Term, as delivered
    assert usage.security_type.isna().all()  # SBA does not record the security: never invented
    truth = pd.read_csv(tmp_path / "truth" / "sba.csv")
    assert truth.charged_off.sum() == 1 and len(truth) == 4 and set(truth.client_id) == set(clients.client_id)


def test_truth_inside_landing_is_refused(tmp_path: Path) -> None:
    csv = tmp_path / "sba.csv"
    csv.write_text(HEADER + "\n" + ROWS[0] + "\n")
    p = subprocess.run(
        [
            LENDSEG,
            "import-sba",
            str(csv),
            "--out",
            str(tmp_path / "landing"),
            "--truth",
            str(tmp_path / "landing" / "t.csv"),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1 and "must not be inside" in p.stderr


@pytest.mark.skipif(not SAMPLE.exists(), reason="shared SBA sample not present")
def test_real_sample_maps_without_leaking(tmp_path: Path) -> None:
    head = pd.read_csv(SAMPLE, dtype=str, nrows=400)
    csv = tmp_path / "sba.csv"
    head.to_csv(csv, index=False)
    _run_import(tmp_path, csv)
    text = _landing_text(tmp_path)
    names = [n for n in head.Name.dropna().unique() if len(n) > 6]
    assert not [n for n in names if n in text]
    assert "CHGOFF" not in text and "P I F" not in text
    truth = pd.read_csv(tmp_path / "truth" / "sba.csv")
    early = (parse_date(head.ApprovalDate) < "1990-01-01") | (parse_date(head.DisbursementDate) < "1990-01-01")
    assert len(truth) == len(head) - early.sum() and truth.charged_off.any()  # pre-1990 loans are left out
