"""``lendseg import-sba``: real U.S. SBA 7(a) loans mapped onto landing contract v1.1 (docs/sba_import.md).

Input: the SBA's own columns (``LoanNr_ChkDgt, Name, City, State, Zip, Bank, BankState, NAICS, ApprovalDate,
ApprovalFY, Term, NoEmp, NewExist, CreateJob, RetainedJob, FranchiseCode, UrbanRural, RevLineCr, LowDoc,
ChgOffDate, DisbursementDate, DisbursementGross, MIS_Status, ChgOffPrinGr, GrAppv, SBA_Appv``).

Rules (each one documented in docs/sba_import.md):

* **One client per borrower** = (``Name``, ``Zip``). ``Name`` and ``Zip`` (and City, Bank) are personal /
  identifying data: they are used in memory to group loans and never written. ``client_id`` = ``SBA`` + the
  borrower's first loan number.
* **Industry**: NAICS -> GB/T 4754-2017 by the longest prefix of seed ``dbt/seeds/naics_gbt4754.csv``;
  NAICS ``0`` or unmapped -> empty.
* **Amounts** USD -> CNY at :data:`USD_CNY` (a fixed rate for scale only; ``$60,000.00`` and ``60000`` both read).
* **Known at approval / disbursement only**: a bureau-like report per loan dated at approval (debt applied
  for, SBA-guaranteed part as collateral, approvals of the borrower in the 6 months before); one usage row per
  loan in its disbursement month (limit, drawn amount, ``Term`` as ``term_months``; not yet past due). Everything
  SBA does not record (the loan's security among them: ``security_type`` stays empty)
  (bureau score, revenue, assets, founding date, province, channel, ...) stays **empty**.
* Loans approved or disbursed before 1990 are left out (contract v1 rejects earlier reports and snapshots).
* **Outcome** (``MIS_Status``, ``ChgOffDate``, ``ChgOffPrinGr``) never reaches the landing zone: it goes to
  the truth file (one row per loan), which must lie outside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dagster_project.lib.settings import DBT_PROJECT_DIR

EARLIEST = pd.Timestamp("1990-01-01")  # contract v1 accepts bureau reports and usage snapshots from 1990 on
USD_CNY = 7.10  # fixed conversion, about the 2023-2024 PBoC central parity; the loans keep their nominal USD
SEED_PATH = DBT_PROJECT_DIR / "seeds" / "naics_gbt4754.csv"
OUTCOME_COLUMNS = ("MIS_Status", "ChgOffDate", "ChgOffPrinGr")
PII_COLUMNS = ("Name", "Zip", "City", "Bank")
CLIENT_COLUMNS = (
    "client_id",
    "legal_name",
    "registration_no",
    "contact_email",
    "contact_phone",
    "industry_code",
    "province_code",
    "registered_capital",
    "employee_count",
    "annual_revenue",
    "total_assets",
    "founded_date",
    "onboarding_date",
    "relationship_status",
    "updated_at",
)
BUREAU_COLUMNS = (
    "report_id",
    "client_id",
    "report_date",
    "bureau_score",
    "total_debt",
    "overdue_amount",
    "max_days_past_due_12m",
    "defaults_5y",
    "inquiries_6m",
    "collateral_value",
    "operating_cash_flow",
    "debt_service_12m",
    "current_ratio",
    "debt_to_equity",
    "legal_judgments",
)
USAGE_COLUMNS = (
    "snapshot_month",
    "account_id",
    "client_id",
    "product_code",
    "credit_limit",
    "outstanding_balance",
    "drawdown_amount",
    "repayment_amount",
    "days_past_due",
    "interaction_count",
    "channel",
    "term_months",
    "security_type",
)


def parse_amount(values: pd.Series) -> pd.Series:
    """'$60,000.00 ' or '60000' -> 60000.0 (empty -> NaN)."""
    s = values.astype("string").str.replace(r"[\$,\s]", "", regex=True)
    return pd.to_numeric(s.replace("", pd.NA), errors="coerce").astype(float)


def parse_date(values: pd.Series) -> pd.Series:
    """M/D/YYYY (this sample) or DD-Mon-YY (the full SBA file) -> Timestamp (NaT when neither parses)."""
    s = values.astype("string").str.strip()
    a = pd.to_datetime(s, format="%m/%d/%Y", errors="coerce")
    b = pd.to_datetime(s, format="%d-%b-%y", errors="coerce")
    b = b.where(b.dt.year <= 2030, b - pd.DateOffset(years=100))  # two-digit years: 1987-2014
    return a.fillna(b)


def naics_mapping(seed: Path = SEED_PATH) -> dict[str, str]:
    df = pd.read_csv(seed, dtype=str)
    return dict(zip(df.naics_prefix, df.gbt4754_code, strict=False))


def map_naics(codes: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """Longest matching NAICS prefix -> GB/T 4754 code; '0', empty or unmapped -> None."""
    widths = sorted({len(k) for k in mapping}, reverse=True)

    def one(code) -> str | None:
        c = str(code).strip().split(".")[0] if pd.notna(code) else ""
        if not c.isdigit() or int(c) == 0:
            return None
        return next((mapping[c[:w]] for w in widths if c[:w] in mapping), None)

    return codes.map(one)


def term_months(values: pd.Series) -> pd.Series:
    """SBA ``Term`` (months) -> contract v1.1 ``term_months``; 0, missing or beyond 600 (the contract's range) ->
    empty."""
    t = pd.to_numeric(values, errors="coerce")
    return t.where((t >= 1) & (t <= 600)).round().astype("Int64")


def _money(v: pd.Series, rate: float) -> pd.Series:
    return (v * rate).round(2)


def build(
    loans: pd.DataFrame, rate: float = USD_CNY, mapping: dict[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(clients, bureau, usage, truth) frames from the SBA rows (pure; no file access)."""
    mapping = mapping or naics_mapping()
    df = loans.copy()
    df["loan_id"] = df["LoanNr_ChkDgt"].astype(str).str.strip()
    df["approved"] = parse_date(df["ApprovalDate"])
    df["disbursed"] = parse_date(df["DisbursementDate"]).fillna(df["approved"])
    for c in ("GrAppv", "SBA_Appv", "DisbursementGross", "ChgOffPrinGr"):
        df[c] = parse_amount(df[c]) if c in df else np.nan
    df = df[df.approved.notna() & (df.approved >= EARLIEST) & (df.disbursed >= EARLIEST)]  # see EARLIEST
    df = df.sort_values(["approved", "loan_id"], kind="stable").reset_index(drop=True)
    borrower = (
        df["Name"].astype("string").str.strip().str.upper().fillna("")
        + "\x00"
        + df["Zip"].astype("string").str.strip().fillna("")
    )
    first_loan = df.groupby(borrower, sort=False)["loan_id"].transform("first")
    df["client_id"] = "SBA" + first_loan
    df["industry_code"] = map_naics(df["NAICS"], mapping)
    g = df.groupby("client_id", sort=False)
    clients = pd.DataFrame(
        {
            "client_id": g.client_id.first(),
            "industry_code": g.industry_code.first(),
            "employee_count": pd.to_numeric(g.NoEmp.last(), errors="coerce").astype("Int64"),
            "onboarding_date": g.approved.first().dt.date,
            "relationship_status": "active",
            "updated_at": g.approved.last().dt.strftime("%Y-%m-%d 00:00:00"),
        }
    ).reset_index(drop=True)
    for c in CLIENT_COLUMNS:
        if c not in clients:
            clients[c] = None
    # approvals of the same borrower in the 6 months up to this one (known at approval)
    t = df.approved.to_numpy()
    inq = np.zeros(len(df), dtype=np.int64)
    for _, idx in g.indices.items():
        ts = t[idx]
        inq[idx] = [int(((ts <= x) & (ts > x - np.timedelta64(183, "D"))).sum()) - 1 for x in ts]
    bureau = pd.DataFrame(
        {
            "report_id": "SBA-" + df.loan_id,
            "client_id": df.client_id,
            "report_date": df.approved.dt.date,
            "total_debt": _money(df.GrAppv, rate),
            "collateral_value": _money(df.SBA_Appv, rate),
            "inquiries_6m": inq,
        }
    )
    for c in BUREAU_COLUMNS:
        if c not in bureau:
            bureau[c] = None
    revolving = df.get("RevLineCr", pd.Series("", index=df.index)).astype("string").str.strip().eq("Y")
    usage = pd.DataFrame(
        {
            "snapshot_month": df.disbursed.dt.to_period("M").dt.to_timestamp().dt.date,
            "account_id": "SBA-" + df.loan_id,
            "client_id": df.client_id,
            "product_code": np.where(revolving.fillna(False), "revolving_credit", "term_loan"),
            "credit_limit": _money(df.GrAppv, rate),
            "outstanding_balance": _money(df.DisbursementGross, rate),
            "drawdown_amount": _money(df.DisbursementGross, rate),
            "days_past_due": 0,
            "term_months": term_months(df.get("Term", pd.Series(np.nan, index=df.index))),
        }
    )
    for c in USAGE_COLUMNS:
        if c not in usage:
            usage[c] = None
    truth = pd.DataFrame(
        {
            "loan_id": df.loan_id,
            "client_id": df.client_id,
            "approval_fy": pd.to_numeric(df["ApprovalFY"].astype(str).str.extract(r"(\d{4})")[0], errors="coerce"),
            "approval_date": df.approved.dt.date,
            "mis_status": df["MIS_Status"].astype("string").str.strip(),
            "charged_off": df["MIS_Status"].astype("string").str.strip().eq("CHGOFF"),
            "chgoff_date": parse_date(df["ChgOffDate"]).dt.date if "ChgOffDate" in df else None,
            "chgoff_principal_cny": _money(df.ChgOffPrinGr, rate),
        }
    )
    return (clients[list(CLIENT_COLUMNS)], bureau[list(BUREAU_COLUMNS)], usage[list(USAGE_COLUMNS)], truth)


def import_sba(csv: Path, out_dir: Path, truth_path: Path, rate: float = USD_CNY) -> dict[str, list[Path]]:
    """Write landing files under ``out_dir`` (clients once, bureau and usage per approval year) + the truth file."""
    out_dir, truth_path = Path(out_dir), Path(truth_path)
    if truth_path.resolve().is_relative_to(out_dir.resolve()):
        raise ValueError("the truth file must not be inside the landing folder")
    loans = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
    missing = {
        "LoanNr_ChkDgt",
        "Name",
        "Zip",
        "NAICS",
        "ApprovalDate",
        "ApprovalFY",
        "GrAppv",
        "SBA_Appv",
        "DisbursementGross",
        "NoEmp",
        "MIS_Status",
    } - set(loans.columns)
    if missing:
        raise ValueError(f"{csv}: not an SBA loan file, missing columns {sorted(missing)}")
    clients, bureau, usage, truth = build(loans, rate)
    files: dict[str, list[Path]] = {"clients": [], "credit_bureau": [], "product_usage": []}
    stamp = f"{pd.to_datetime(clients.updated_at).max():%Y%m}"  # the file's content decides its name (reproducible)
    path = out_dir / "clients" / f"clients_sba_{stamp}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    clients.to_csv(path, index=False)
    files["clients"].append(path)
    for source, frame, col in (("credit_bureau", bureau, "report_date"), ("product_usage", usage, "snapshot_month")):
        years = pd.to_datetime(frame[col]).dt.year
        (out_dir / source).mkdir(parents=True, exist_ok=True)
        for y, part in frame.groupby(years):
            p = out_dir / source / f"{source}_sba_{y}.csv"
            part.to_csv(p, index=False)
            files[source].append(p)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth.to_csv(truth_path, index=False)
    return files
