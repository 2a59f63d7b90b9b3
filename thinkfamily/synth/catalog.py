"""The ~30 agency extracts: shape, format, identifiers, and how each is built from true events.

Every Source here is also written out as schemas/sources/<name>.yaml (thinkfamily.synth.schemas),
so the YAML and the generated files cannot drift apart (a test checks both ways).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfamily.synth.render import PII, Col, Ctx, Source


def pc(role: str, attr: str, name: str, **kw) -> Col:
    """A person column: type and personal-data class follow from the attribute."""
    typ = "date" if attr == "dob" else "long" if attr == "uprn" else "string"
    return Col(name, f"{role}.{attr}", type=typ, pii=kw.pop("pii", PII.get(attr, "direct")), **kw)


def ev_frame(etype: str, **cols):
    """Builder: one record per true event of the type; cols name extra frame columns -> event columns."""
    def build(ctx: Ctx) -> pd.DataFrame:
        e = ctx.ev[etype]
        out = pd.DataFrame({"day": e.day.to_numpy(), "subject": e.pidx.to_numpy(), "end_day": e.end_day.to_numpy()})
        for new, old in cols.items():
            out[new] = e[old].to_numpy()
        return out
    return build


def _events_with(*etypes):
    def build(ctx: Ctx) -> pd.DataFrame:
        parts = []
        for t in etypes:
            e = ctx.ev[t]
            parts.append(pd.DataFrame({"day": e.day.to_numpy(), "subject": e.pidx.to_numpy(), "end_day": e.end_day.to_numpy(),
                                       "code": e.code.to_numpy(), "etype": t}))
        return pd.concat(parts, ignore_index=True)
    return build


def _pnc_if_proven(ctx: Ctx) -> pd.DataFrame:
    e = ctx.ev["offence"]
    out = ev_frame("offence", code="code", outcome="outcome")(ctx)
    out["pnc_known"] = e.outcome.isin(["CHARGED", "CAUTION"]).to_numpy()
    return out


def _da(ctx: Ctx) -> pd.DataFrame:
    e = ctx.ev["da_incident"]
    return pd.DataFrame({"day": e.day, "victim": e.pidx, "perpetrator": e.other, "code": e.code,
                         "children_present": e.children_present})


def _marac(ctx: Ctx) -> pd.DataFrame:
    e = ctx.ev["marac_referral"]
    P = ctx.city.persons
    kids = pd.Series((P.role == "child").to_numpy()).groupby(ctx.fidx).sum()
    return pd.DataFrame({"day": e.day, "victim": e.pidx, "perpetrator": e.other,
                         "n_children": kids.reindex(ctx.fidx[e.pidx]).to_numpy()})


def _with_parent(etype: str, child_col: str | None = None):
    """Child-centred record naming the family's lead adult as parent."""
    def build(ctx: Ctx) -> pd.DataFrame:
        e = ctx.ev[etype]
        P = ctx.city.persons
        parents = np.flatnonzero(P.role.isin(["parent", "step_parent"]).to_numpy())
        lead = pd.Series(parents).groupby(ctx.fidx[parents]).first()
        child = e[child_col].to_numpy() if child_col else e.pidx.to_numpy()
        parent = e.pidx.to_numpy() if child_col else lead.reindex(ctx.fidx[child]).fillna(-1).astype(np.int64).to_numpy()
        return pd.DataFrame({"day": e.day.to_numpy(), "end_day": e.end_day.to_numpy(), "child": child, "parent": parent,
                             "code": e.code.to_numpy(), **{c: e[c].to_numpy() for c in ("academic_year", "school_urn", "concern") if c in e}})
    return build


def _census(ctx: Ctx) -> pd.DataFrame:
    out = _with_parent("school_enrolment")(ctx)
    P = ctx.city.persons
    sex = P.sex.to_numpy()[np.maximum(out.parent.to_numpy(), 0)]
    out["contact_rel"] = np.where(out.parent < 0, None, np.where(sex == "F", "Mother", "Father"))
    step = P.role.to_numpy()[np.maximum(out.parent.to_numpy(), 0)] == "step_parent"
    out.loc[step & (out.parent >= 0).to_numpy(), "contact_rel"] = "Step-parent"
    return out.rename(columns={"child": "pupil", "parent": "contact"})


def _attendance(ctx: Ctx) -> pd.DataFrame:
    e = ctx.ev["attendance_term"]
    return pd.DataFrame({"day": e.day, "end_day": e.end_day, "subject": e.pidx, "term": e.term, "academic_year": e.academic_year,
                         "possible": e.sessions_possible, "authorised": e.sessions_authorised,
                         "unauthorised": e.sessions_unauthorised})


def _exclusions(ctx: Ctx) -> pd.DataFrame:
    f, p = ctx.ev["exclusion_fixed"], ctx.ev["exclusion_permanent"]
    out = pd.concat([
        pd.DataFrame({"day": f.day, "subject": f.pidx, "kind": "FIXED", "length": (f.end_day - f.day).astype(float) / 1.0, "code": f.code}),
        pd.DataFrame({"day": p.day, "subject": p.pidx, "kind": "PERM", "length": np.nan, "code": p.code}),
    ], ignore_index=True)
    out["length"] = out.length.map(lambda x: None if pd.isna(x) else f"{x:.1f}")
    return out


def _ae(ctx: Ctx) -> pd.DataFrame:
    out = ev_frame("ae_attendance", code="code")(ctx)
    out["arrival"] = out.day.to_numpy().astype(np.int64) * 1440 + ctx.ev["ae_attendance"].arrival_minute.to_numpy()
    return out


def _rent(ctx: Ctx) -> pd.DataFrame:
    e = ctx.ev["rent_arrears"]
    return pd.DataFrame({"day": e.day, "subject": e.pidx, "amount": e.amount, "weeks": e.weeks, "code": e.code})


def _gazetteer(ctx: Ctx) -> pd.DataFrame:
    g = ctx.city.gazetteer
    return pd.DataFrame({"day": -1, "uprn": g.uprn, "line1": g.address_line1, "line2": g.address_line2, "town": g.town,
                         "postcode": g.postcode, "area": g.area, "easting": g.easting, "northing": g.northing})


def _benefits(ctx: Ctx) -> pd.DataFrame:
    e = ctx.ev["benefit_claim"]
    return pd.DataFrame({"day": e.day, "subject": e.pidx, "end_day": e.end_day, "start": e.claim_start, "code": e.code})


def _hv(ctx: Ctx) -> pd.DataFrame:
    e = ctx.ev["health_visiting"]
    return pd.DataFrame({"day": e.day, "child": e.pidx, "parent": e.parent, "code": e.code, "concern": e.concern})


def _early_help(ctx: Ctx) -> pd.DataFrame:
    e = ctx.ev["early_help"]
    return pd.DataFrame({"day": e.day, "end_day": e.end_day, "child": e.child, "parent": e.pidx, "code": e.code})


POLICE = frozenset({"police_id", "pnc_id"})
CSC = frozenset({"csc_id", "upn"})
EDU = frozenset({"upn"})
HEALTH = frozenset({"nhs_number", "client_id"})
DWP = frozenset({"ni_number"})


def _police_person(role: str, prefix: str, upper: bool = True, address: bool = True) -> list[Col]:
    n = (lambda s: s.upper()) if upper else (lambda s: s)
    cols = [pc(role, "police_id", n(f"{prefix}nominal_id"), pii="direct", required=role == "subject"),
            pc(role, "last_name", n(f"{prefix}surname")), pc(role, "first_name", n(f"{prefix}forename")),
            pc(role, "dob", n(f"{prefix}dob")), pc(role, "sex", n(f"{prefix}sex"), allowed=("M", "F"))]
    if address:
        cols += [pc(role, "address_line1", n(f"{prefix}address")), pc(role, "postcode", n(f"{prefix}postcode"))]
    return cols


def catalog() -> list[Source]:
    S: list[Source] = []
    # ---------------------------------------------------------------- police
    S.append(Source(
        "police_offenders", "police", "niche-extracts@police.example", "Offenders: crimes where the person is the suspect/offender (Niche RMS)",
        "csv", key_prefix="CR", date_format="dd/MM/yyyy", split="fy", upper_surname=True, build=_pnc_if_proven,
        columns=[Col("CRIME_REF", "key", key=True, required=True)] + _police_person("subject", "")[:1]
        + [Col("PNC_ID", "subject.pnc_id", pii="direct")] + _police_person("subject", "")[1:]
        + [pc("subject", "ethnicity", "ETHNICITY", allowed=("W", "M", "A", "B", "O")),
           Col("OFFENCE_DATE", "day", "date", required=True), Col("OFFENCE_GROUP", "code"),
           Col("OUTCOME", "outcome", allowed=("CHARGED", "CAUTION", "COMMUNITY_RESOLUTION", "NFA", "UNDER_INVESTIGATION"))],
        events=[{"event_type": "offence", "date": "OFFENCE_DATE", "code": "OUTCOME", "attributes": ["OFFENCE_GROUP"]}],
        allowed_identifiers=POLICE))
    S.append(Source(
        "police_victims", "police", "niche-extracts@police.example", "Victims of recorded crime", "json", ext="jsonl",
        key_prefix="VR", sex_style="word", build=ev_frame("crime_victim", code="code"),
        columns=[Col("victimRecordId", "key", key=True, required=True), pc("subject", "police_id", "nominalId", required=True),
                 pc("subject", "first_name", "forename"), pc("subject", "last_name", "surname"), pc("subject", "dob", "dateOfBirth"),
                 pc("subject", "sex", "gender"), pc("subject", "address_line1", "address"), pc("subject", "postcode", "postcode"),
                 Col("offenceDate", "day", "date", required=True), Col("crimeType", "code")],
        events=[{"event_type": "crime_victim", "date": "offenceDate", "code": "crimeType"}], allowed_identifiers=POLICE))
    S.append(Source(
        "police_da_incidents", "police", "public-protection@police.example", "Domestic abuse incidents: victim and perpetrator per incident",
        "csv", options={"delimiter": "|", "encoding": "cp1252"}, line_end="\r\n", key_prefix="DA", date_format="dd/MM/yyyy",
        split="quarter", roles=("victim", "perpetrator"), build=_da,
        optional_role_when={"perpetrator": "perp_nominal_id IS NOT NULL"},
        columns=[Col("incident_ref", "key", key=True, required=True), Col("incident_date", "day", "date", required=True),
                 Col("risk_level", "code", allowed=("STANDARD", "MEDIUM", "HIGH")), Col("children_present", "children_present", "boolean")]
        + _police_person("victim", "victim_", upper=False) + _police_person("perpetrator", "perp_", upper=False, address=False),
        events=[{"event_type": "da_incident", "date": "incident_date", "person_role": "victim", "code": "risk_level", "attributes": ["children_present"]},
                {"event_type": "da_incident", "date": "incident_date", "person_role": "perpetrator", "code": "risk_level", "attributes": ["children_present"]}],
        allowed_identifiers=POLICE))
    S.append(Source(
        "police_asb", "police", "asb-team@police.example", "Anti-social behaviour incidents naming a person", "xml", ext="xml",
        options={"row_tag": "incident", "root_tag": "asbIncidents"}, key_prefix="ASB", build=ev_frame("asb_incident", code="code"),
        columns=[Col("IncidentId", "key", key=True, required=True), pc("subject", "police_id", "NominalId", required=True),
                 pc("subject", "first_name", "Forename"), pc("subject", "last_name", "Surname"), pc("subject", "dob", "DateOfBirth"),
                 pc("subject", "postcode", "Postcode"), Col("IncidentDate", "day", "date", required=True), Col("Category", "code")],
        events=[{"event_type": "asb_incident", "date": "IncidentDate", "code": "Category"}], allowed_identifiers=POLICE))
    S.append(Source(
        "police_missing_persons", "police", "missing-persons@police.example", "Missing person episodes (COMPACT)", "csv",
        options={"delimiter": "|", "encoding": "cp1252"}, line_end="\r\n", key_prefix="MP", date_format="dd/MM/yyyy",
        build=ev_frame("missing_episode", code="code"),
        columns=[Col("episode_ref", "key", key=True, required=True)] + _police_person("subject", "", upper=False)
        + [Col("date_reported", "day", "date", required=True), Col("date_found", "end_day", "date"),
           Col("risk_grading", "code", allowed=("LOW", "MEDIUM", "HIGH"))],
        events=[{"event_type": "missing_episode", "date": "date_reported", "end_date": "date_found", "code": "risk_grading"}],
        allowed_identifiers=POLICE))
    S.append(Source(
        "police_intelligence", "police", "intel-unit@police.example", "Intelligence markers on nominals", "parquet", ext="parquet",
        key_prefix="IM", build=ev_frame("intelligence_marker", code="code"),
        columns=[Col("marker_id", "key", key=True, required=True), pc("subject", "police_id", "nominal_id", required=True),
                 pc("subject", "last_name", "surname"), pc("subject", "first_name", "forename"), pc("subject", "dob", "date_of_birth"),
                 Col("marker_type", "code"), Col("marker_date", "day", "date", required=True)],
        events=[{"event_type": "intelligence_marker", "date": "marker_date", "code": "marker_type"}], allowed_identifiers=POLICE))
    S.append(Source(
        "asb_interventions", "community_safety", "community-safety@council.example", "Formal ASB interventions (warnings, ABCs, CPWs, injunctions)",
        "csv", options={"delimiter": ";"}, key_prefix="ASBI", build=ev_frame("asb_intervention", code="code"),
        columns=[Col("intervention_id", "key", key=True, required=True), pc("subject", "first_name", "forename"),
                 pc("subject", "last_name", "surname"), pc("subject", "dob", "dob"), pc("subject", "address_line1", "address"),
                 pc("subject", "postcode", "postcode"), Col("intervention_date", "day", "date", required=True),
                 Col("intervention_type", "code")],
        events=[{"event_type": "asb_intervention", "date": "intervention_date", "code": "intervention_type"}]))
    # ---------------------------------------------------------------- children's social care
    csc_person = lambda role, p: [pc(role, "csc_id", f"{p}person_id", pii="direct"), pc(role, "first_name", f"{p}forename"),
                                  pc(role, "last_name", f"{p}surname")]
    S.append(Source(
        "csc_referrals", "childrens_social_care", "csc-performance@council.example", "Referrals to children's social care (child and parent)",
        "csv", key_prefix="REF", roles=("child", "parent"), build=_with_parent("cs_referral"),
        optional_role_when={"parent": "parent_person_id IS NOT NULL"},
        columns=[Col("referral_id", "key", key=True, required=True)] + csc_person("child", "child_")
        + [pc("child", "dob", "child_dob"), pc("child", "sex", "child_gender"), pc("child", "ethnicity", "child_ethnicity"),
           pc("child", "address_line1", "address_line_1"), pc("child", "postcode", "postcode"),
           Col("referral_date", "day", "date", required=True), Col("primary_need", "code")] + csc_person("parent", "parent_"),
        events=[{"event_type": "cs_referral", "date": "referral_date", "person_role": "child", "code": "primary_need"}],
        relationships=[{"from_role": "parent", "to_role": "child", "relationship": "parent"}], allowed_identifiers=CSC))
    S.append(Source(
        "csc_assessments", "childrens_social_care", "csc-performance@council.example", "Single assessments", "json", ext="jsonl",
        key_prefix="ASM", sex_style="word", build=ev_frame("cs_assessment", code="code"),
        columns=[Col("assessmentId", "key", key=True, required=True), pc("subject", "csc_id", "personId", required=True),
                 pc("subject", "first_name", "forename"), pc("subject", "last_name", "surname"), pc("subject", "dob", "dob"),
                 pc("subject", "sex", "gender"), Col("startDate", "day", "date", required=True), Col("authorisedDate", "end_day", "date"),
                 Col("outcome", "code")],
        events=[{"event_type": "cs_assessment", "date": "startDate", "end_date": "authorisedDate", "code": "outcome"}], allowed_identifiers=CSC))
    S.append(Source(
        "csc_cin", "childrens_social_care", "csc-performance@council.example", "Child in need episodes", "csv",
        options={"delimiter": "\t"}, ext="tsv", key_prefix="CIN", date_format="dd/MM/yyyy", build=ev_frame("child_in_need", code="code"),
        columns=[Col("CINEpisodeID", "key", key=True, required=True), pc("subject", "csc_id", "PersonID", required=True),
                 pc("subject", "first_name", "Forename"), pc("subject", "last_name", "Surname"), pc("subject", "dob", "DOB"),
                 pc("subject", "sex", "Gender"), Col("CINStartDate", "day", "date", required=True), Col("CINClosureDate", "end_day", "date"),
                 Col("PrimaryNeedCode", "code")],
        events=[{"event_type": "child_in_need", "date": "CINStartDate", "end_date": "CINClosureDate", "code": "PrimaryNeedCode"}],
        allowed_identifiers=CSC))
    S.append(Source(
        "csc_cp_plans", "childrens_social_care", "csc-performance@council.example", "Child protection plans", "xml", ext="xml",
        options={"row_tag": "plan", "root_tag": "cpPlans"}, key_prefix="CPP", date_format="dd/MM/yyyy", build=ev_frame("cp_plan", code="code"),
        columns=[Col("plan_id", "key", key=True, required=True), pc("subject", "csc_id", "person_id", required=True),
                 pc("subject", "first_name", "forename"), pc("subject", "last_name", "surname"), pc("subject", "dob", "dob"),
                 pc("subject", "sex", "sex"), Col("start_date", "day", "date", required=True), Col("end_date", "end_day", "date"),
                 Col("category", "code")],
        events=[{"event_type": "cp_plan", "date": "start_date", "end_date": "end_date", "code": "category"}], allowed_identifiers=CSC))
    S.append(Source(
        "csc_looked_after", "childrens_social_care", "csc-performance@council.example", "Looked-after episodes (SSDA903)", "parquet",
        ext="parquet", key_prefix="LAC", build=ev_frame("looked_after", code="code", placement="placement"),
        columns=[Col("episode_id", "key", key=True, required=True), pc("subject", "csc_id", "person_id", required=True),
                 pc("subject", "upn", "upn"), pc("subject", "first_name", "forename"), pc("subject", "last_name", "surname"),
                 pc("subject", "dob", "dob"), pc("subject", "sex", "sex"), Col("start_date", "day", "date", required=True),
                 Col("end_date", "end_day", "date"), Col("legal_status", "code"), Col("placement_type", "placement")],
        events=[{"event_type": "looked_after", "date": "start_date", "end_date": "end_date", "code": "legal_status", "attributes": ["placement_type"]}],
        allowed_identifiers=CSC))
    S.append(Source(
        "csc_exploitation", "childrens_social_care", "exploitation-hub@council.example", "Children recorded at risk of / subject to sexual exploitation (cohort label source)",
        "csv", key_prefix="EXP", build=ev_frame("exploitation_flag", code="code"),
        columns=[Col("flag_id", "key", key=True, required=True), pc("subject", "csc_id", "person_id", required=True),
                 pc("subject", "first_name", "forename"), pc("subject", "last_name", "surname"), pc("subject", "dob", "dob"),
                 pc("subject", "sex", "sex"), Col("flag_date", "day", "date", required=True), Col("exploitation_type", "code", allowed=("CSE",))],
        events=[{"event_type": "exploitation_flag", "date": "flag_date", "code": "exploitation_type"}], allowed_identifiers=CSC))
    S.append(Source(
        "early_help", "early_help", "early-help@council.example", "Early help episodes (family-level, lead child and parent)", "csv",
        options={"delimiter": ";"}, key_prefix="EH", date_format="dd/MM/yyyy", roles=("child", "parent"), build=_early_help,
        columns=[Col("EH_REF", "key", key=True, required=True), pc("child", "csc_id", "CHILD_ID"), pc("child", "first_name", "CHILD_FORENAME"),
                 pc("child", "last_name", "CHILD_SURNAME"), pc("child", "dob", "CHILD_DOB"), pc("parent", "first_name", "PARENT_FORENAME"),
                 pc("parent", "last_name", "PARENT_SURNAME"), pc("parent", "dob", "PARENT_DOB"), pc("parent", "address_line1", "ADDRESS"),
                 pc("parent", "postcode", "POSTCODE"), Col("START_DATE", "day", "date", required=True), Col("END_DATE", "end_day", "date"),
                 Col("PRIMARY_REASON", "code")],
        events=[{"event_type": "early_help", "date": "START_DATE", "end_date": "END_DATE", "person_role": "child", "code": "PRIMARY_REASON"},
                {"event_type": "early_help", "date": "START_DATE", "end_date": "END_DATE", "person_role": "parent", "code": "PRIMARY_REASON"}],
        relationships=[{"from_role": "parent", "to_role": "child", "relationship": "parent"}], allowed_identifiers=frozenset({"csc_id"})))
    # ---------------------------------------------------------------- education
    S.append(Source(
        "school_census", "education", "school-census@council.example", "School census: pupils on roll per census day, with the priority contact",
        "csv", key_prefix="SC", split="academic_year", roles=("pupil", "contact"), build=_census,
        optional_role_when={"contact": "contact_surname IS NOT NULL"},
        columns=[Col("census_record_id", "key", key=True, required=True), pc("pupil", "upn", "upn"), pc("pupil", "last_name", "legal_surname"),
                 pc("pupil", "first_name", "forename"), pc("pupil", "dob", "dob"), pc("pupil", "sex", "gender"),
                 pc("pupil", "ethnicity", "ethnicity"), pc("pupil", "address_line1", "address"), pc("pupil", "postcode", "postcode"),
                 Col("census_date", "day", "date", required=True), Col("year_group", "code"), Col("school_urn", "school_urn"),
                 pc("contact", "first_name", "contact_forename"), pc("contact", "last_name", "contact_surname"),
                 Col("contact_relationship", "contact_rel")],
        events=[{"event_type": "school_enrolment", "date": "census_date", "person_role": "pupil", "code": "year_group", "attributes": ["school_urn"]}],
        relationships=[{"from_role": "contact", "to_role": "pupil", "relationship": "parent"}], allowed_identifiers=EDU))
    S.append(Source(
        "school_attendance", "education", "attendance@council.example", "Termly attendance returns (fixed-width)", "fixed_width",
        options={"header": False}, ext="txt", key_prefix="AT", date_format="yyyyMMdd", split="academic_year", build=_attendance,
        columns=[Col("record_id", "key", key=True, required=True, width=10), pc("subject", "upn", "upn", width=13),
                 pc("subject", "last_name", "surname", width=20), pc("subject", "first_name", "forename", width=15),
                 pc("subject", "dob", "dob", width=8), Col("term", "term", width=5), Col("term_start", "day", "date", required=True, width=8),
                 Col("term_end", "end_day", "date", width=8), Col("sessions_possible", "possible", "int", width=4),
                 Col("sessions_authorised", "authorised", "int", width=4), Col("sessions_unauthorised", "unauthorised", "int", width=4)],
        events=[{"event_type": "attendance_term", "date": "term_start", "end_date": "term_end", "code": "term",
                 "attributes": ["sessions_possible", "sessions_authorised", "sessions_unauthorised"]}],
        expectations=[{"type": "expect_column_values_to_be_between", "kwargs": {"column": "sessions_possible", "min_value": 0, "max_value": 400}}],
        allowed_identifiers=EDU))
    S.append(Source(
        "school_exclusions", "education", "inclusion@council.example", "Suspensions and permanent exclusions", "csv",
        options={"delimiter": ";"}, key_prefix="EX", date_format="dd-MMM-yy", build=_exclusions,
        columns=[Col("ExclusionID", "key", key=True, required=True), pc("subject", "upn", "UPN"), pc("subject", "last_name", "Surname"),
                 pc("subject", "first_name", "Forename"), pc("subject", "dob", "DOB"), pc("subject", "sex", "Gender"),
                 Col("StartDate", "day", "date", required=True), Col("Category", "kind", allowed=("FIXED", "PERM")),
                 Col("Days", "length", "double"), Col("Reason", "code")],
        events=[{"event_type": "exclusion_fixed", "date": "StartDate", "when": "Category = 'FIXED'", "code": "Reason", "attributes": ["Days"]},
                {"event_type": "exclusion_permanent", "date": "StartDate", "when": "Category = 'PERM'", "code": "Reason"}],
        allowed_identifiers=EDU))
    S.append(Source(
        "neet_tracking", "education", "post16-tracking@council.example", "Post-16 participation tracking (US-style dates from the vendor system)",
        "csv", key_prefix="NT", date_format="MM/dd/yyyy", build=ev_frame("neet", code="code"),
        columns=[Col("record_id", "key", key=True, required=True), pc("subject", "upn", "upn"), pc("subject", "first_name", "first_name"),
                 pc("subject", "last_name", "last_name"), pc("subject", "dob", "birth_date"), pc("subject", "postcode", "postcode"),
                 Col("status_date", "day", "date", required=True), Col("status_end_date", "end_day", "date"), Col("status_code", "code")],
        events=[{"event_type": "neet", "date": "status_date", "end_date": "status_end_date", "when": "status_code = 'NEET'", "code": "status_code"}],
        allowed_identifiers=EDU))
    S.append(Source(
        "early_years", "education", "early-years@council.example", "Funded early-years places (child and parent)", "json", ext="jsonl",
        key_prefix="EY", roles=("child", "parent"), build=_with_parent("early_years_place"),
        optional_role_when={"parent": "parentSurname IS NOT NULL"},
        columns=[Col("placementId", "key", key=True, required=True), pc("child", "first_name", "childForename"),
                 pc("child", "last_name", "childSurname"), pc("child", "dob", "childDob"), pc("parent", "first_name", "parentForename"),
                 pc("parent", "last_name", "parentSurname"), pc("child", "address_line1", "address"), pc("child", "postcode", "postcode"),
                 Col("startDate", "day", "date", required=True), Col("fundingType", "code")],
        events=[{"event_type": "early_years_place", "date": "startDate", "person_role": "child", "code": "fundingType"}],
        relationships=[{"from_role": "parent", "to_role": "child", "relationship": "parent"}]))
    # ---------------------------------------------------------------- DWP, revenues, housing
    S.append(Source(
        "dwp_benefits", "dwp", "dwp-data-share@dwp.example", "Out-of-work benefit claims (DWP fixed-width share)", "fixed_width",
        options={"header": False}, ext="dat", key_prefix="DWP", date_format="ddMMyyyy", split="fy", upper_surname=True, build=_benefits,
        columns=[Col("RECORD_ID", "key", key=True, required=True, width=10), pc("subject", "ni_number", "NINO", width=9),
                 pc("subject", "last_name", "SURNAME", width=25), pc("subject", "first_name", "FORENAMES", width=20),
                 pc("subject", "dob", "DOB", width=8), pc("subject", "postcode", "POSTCODE", width=8), Col("BENEFIT", "code", width=15),
                 Col("CLAIM_START", "start", "date", width=8), Col("EXTRACT_FROM", "day", "date", required=True, width=8),
                 Col("CLAIM_END", "end_day", "date", width=8)],
        events=[{"event_type": "benefit_claim", "date": "EXTRACT_FROM", "end_date": "CLAIM_END", "code": "BENEFIT", "attributes": ["CLAIM_START"]}],
        allowed_identifiers=DWP))
    S.append(Source(
        "council_tax_reduction", "revenues", "revenues@council.example", "Council tax reduction claims", "csv",
        options={"encoding": "cp1252"}, line_end="\r\n", key_prefix="CTR", date_format="dd/MM/yyyy",
        build=ev_frame("ctr_claim", code="code", amount="amount"),
        columns=[Col("ClaimRef", "key", key=True, required=True), pc("subject", "ni_number", "NINO"), pc("subject", "first_name", "Forename"),
                 pc("subject", "last_name", "Surname"), pc("subject", "dob", "DOB"), pc("subject", "uprn", "UPRN"),
                 pc("subject", "address_line1", "Address1"), pc("subject", "address_line2", "Address2"), pc("subject", "postcode", "Postcode"),
                 Col("ClaimDate", "day", "date", required=True), Col("AnnualAward", "amount", "double")],
        events=[{"event_type": "ctr_claim", "date": "ClaimDate", "attributes": ["AnnualAward"]}], allowed_identifiers=DWP))
    S.append(Source(
        "housing_tenancies", "housing", "housing-systems@council.example", "Council tenancies (lead tenant)", "csv",
        options={"delimiter": "\t"}, ext="tsv", key_prefix="TEN", build=ev_frame("tenancy", code="code"),
        columns=[Col("tenancy_ref", "key", key=True, required=True), pc("subject", "first_name", "lead_tenant_forename"),
                 pc("subject", "last_name", "lead_tenant_surname"), pc("subject", "dob", "lead_tenant_dob"),
                 pc("subject", "uprn", "uprn"), pc("subject", "address_line1", "address_line_1"), pc("subject", "postcode", "postcode"),
                 Col("tenancy_start", "day", "date", required=True), Col("tenancy_end", "end_day", "date"), Col("tenure_type", "code")],
        events=[{"event_type": "tenancy", "date": "tenancy_start", "end_date": "tenancy_end", "code": "tenure_type", }]))
    S.append(Source(
        "housing_rent_arrears", "housing", "income-team@council.example", "Quarterly rent arrears snapshots", "parquet", ext="parquet",
        key_prefix="RA", build=_rent,
        columns=[Col("arrears_id", "key", key=True, required=True), pc("subject", "first_name", "tenant_forename"),
                 pc("subject", "last_name", "tenant_surname"), pc("subject", "uprn", "uprn"), pc("subject", "postcode", "postcode"),
                 Col("snapshot_date", "day", "date", required=True), Col("balance", "amount", "double"), Col("weeks_in_arrears", "weeks", "int"),
                 Col("recovery_stage", "code")],
        events=[{"event_type": "rent_arrears", "date": "snapshot_date", "code": "recovery_stage", "attributes": ["balance", "weeks_in_arrears"]}]))
    S.append(Source(
        "homelessness", "housing", "housing-options@council.example", "Homelessness applications (H-CLIC)", "json", ext="jsonl",
        key_prefix="HL", build=ev_frame("homelessness", code="code", reason="reason"),
        columns=[Col("caseRef", "key", key=True, required=True), pc("subject", "first_name", "applicantForename"),
                 pc("subject", "last_name", "applicantSurname"), pc("subject", "dob", "applicantDob"), pc("subject", "ni_number", "applicantNino"),
                 pc("subject", "postcode", "lastSettledPostcode"), Col("applicationDate", "day", "date", required=True),
                 Col("dutyType", "code"), Col("reason", "reason")],
        events=[{"event_type": "homelessness", "date": "applicationDate", "code": "dutyType", "attributes": ["reason"]}],
        allowed_identifiers=DWP))
    # ---------------------------------------------------------------- justice
    S.append(Source(
        "youth_offending", "youth_justice", "yjs@council.example", "Youth justice service interventions", "xml", ext="xml",
        options={"row_tag": "intervention", "root_tag": "yjInterventions"}, key_prefix="YJ", date_format="dd/MM/yyyy",
        build=ev_frame("youth_offending", code="code"),
        columns=[Col("YJRef", "key", key=True, required=True), pc("subject", "yot_id", "YJPersonId", required=True),
                 Col("PNCId", "subject.pnc_id", pii="direct"), pc("subject", "first_name", "Forename"), pc("subject", "last_name", "Surname"),
                 pc("subject", "dob", "DOB"), pc("subject", "sex", "Sex"), pc("subject", "postcode", "Postcode"),
                 Col("StartDate", "day", "date", required=True), Col("InterventionType", "code")],
        events=[{"event_type": "youth_offending", "date": "StartDate", "code": "InterventionType"}],
        allowed_identifiers=frozenset({"yot_id", "pnc_id"})))
    S.append(Source(
        "probation", "probation", "probation-data@justice.example", "Adults on community orders or licence", "csv",
        options={"delimiter": "|"}, key_prefix="PR", build=ev_frame("probation", code="code"),
        columns=[Col("case_id", "key", key=True, required=True), pc("subject", "crn", "crn", required=True), Col("pnc_id", "subject.pnc_id", pii="direct"),
                 pc("subject", "first_name", "forename"), pc("subject", "last_name", "surname"), pc("subject", "dob", "dob"),
                 pc("subject", "sex", "sex"), pc("subject", "postcode", "postcode"), Col("sentence_date", "day", "date", required=True),
                 Col("end_date", "end_day", "date"), Col("order_type", "code")],
        events=[{"event_type": "probation", "date": "sentence_date", "end_date": "end_date", "code": "order_type"}],
        allowed_identifiers=frozenset({"crn", "pnc_id"})))
    S.append(Source(
        "marac", "marac", "marac-coordinator@council.example", "MARAC referrals (high-risk domestic abuse), names as written on the form",
        "csv", options={"encoding": "cp1252"}, line_end="\r\n", key_prefix="MAR", date_format="dd/MM/yyyy",
        roles=("victim", "perpetrator"), build=_marac, optional_role_when={"perpetrator": "perpetrator_name IS NOT NULL"},
        columns=[Col("marac_ref", "key", key=True, required=True), Col("referral_date", "day", "date", required=True),
                 pc("victim", "full_name", "victim_name"), pc("victim", "dob", "victim_dob"), pc("victim", "address_line1", "victim_address"),
                 pc("victim", "postcode", "victim_postcode"), pc("perpetrator", "full_name", "perpetrator_name"),
                 Col("children_in_household", "n_children", "int")],
        events=[{"event_type": "marac_referral", "date": "referral_date", "person_role": "victim", "attributes": ["children_in_household"]},
                {"event_type": "marac_referral", "date": "referral_date", "person_role": "perpetrator"}]))
    # ---------------------------------------------------------------- health
    S.append(Source(
        "gp_registrations", "nhs_icb", "icb-data@nhs.example", "GP practice registrations (PDS-style), one row per registration", "csv",
        key_prefix="GP", sex_style="num", build=ev_frame("gp_registration", code="code"),
        columns=[Col("registration_id", "key", key=True, required=True), pc("subject", "nhs_number", "nhs_number"),
                 pc("subject", "first_name", "given_name"), pc("subject", "last_name", "family_name"), pc("subject", "dob", "date_of_birth"),
                 pc("subject", "sex", "sex", allowed=("1", "2")), pc("subject", "address_line1", "address_line_1"),
                 pc("subject", "address_line2", "address_line_2"), pc("subject", "postcode", "postcode"),
                 Col("practice_code", "code"), Col("registration_date", "day", "date", required=True)],
        events=[{"event_type": "gp_registration", "date": "registration_date", "code": "practice_code"}], allowed_identifiers=HEALTH))
    S.append(Source(
        "substance_misuse", "treatment_service", "treatment-data@provider.example", "Drug and alcohol treatment episodes", "csv",
        options={"delimiter": ";", "encoding": "cp1252"}, line_end="\r\n", key_prefix="SM", date_format="dd/MM/yyyy",
        build=ev_frame("substance_misuse", code="code"),
        columns=[Col("EpisodeID", "key", key=True, required=True), pc("subject", "client_id", "ClientRef"), pc("subject", "nhs_number", "NHSNumber"),
                 pc("subject", "first_name", "Forename"), pc("subject", "last_name", "Surname"), pc("subject", "dob", "DOB"),
                 pc("subject", "sex", "Sex"), pc("subject", "postcode", "Postcode"), Col("ReferralDate", "day", "date", required=True),
                 Col("DischargeDate", "end_day", "date"), Col("Substance", "code")],
        events=[{"event_type": "substance_misuse", "date": "ReferralDate", "end_date": "DischargeDate", "code": "Substance"}],
        allowed_identifiers=HEALTH))
    S.append(Source(
        "mental_health", "nhs_mental_health", "mh-informatics@nhs.example", "Mental health service referrals (CAMHS and adult)", "parquet",
        ext="parquet", key_prefix="MH", sex_style="word", build=ev_frame("mental_health", code="code"),
        columns=[Col("referral_id", "key", key=True, required=True), pc("subject", "nhs_number", "nhs_number"),
                 pc("subject", "first_name", "forename"), pc("subject", "last_name", "surname"), pc("subject", "dob", "date_of_birth"),
                 pc("subject", "sex", "gender"), pc("subject", "postcode", "postcode"), Col("referral_date", "day", "date", required=True),
                 Col("discharge_date", "end_day", "date"), Col("service", "code")],
        events=[{"event_type": "mental_health", "date": "referral_date", "end_date": "discharge_date", "code": "service"}],
        allowed_identifiers=HEALTH))
    S.append(Source(
        "ae_attendances", "nhs_acute", "acute-informatics@nhs.example", "Emergency department attendances (ECDS extract)", "csv",
        key_prefix="AE", date_format="dd/MM/yyyy", split="fy", build=_ae,
        columns=[Col("attendance_id", "key", key=True, required=True), pc("subject", "nhs_number", "nhs_number"),
                 pc("subject", "first_name", "forename"), pc("subject", "last_name", "surname"), pc("subject", "dob", "dob"),
                 pc("subject", "sex", "sex"), pc("subject", "postcode", "postcode"),
                 Col("arrival_time", "arrival", "timestamp", required=True, fmt="yyyy-MM-dd HH:mm"),
                 Col("arrival_date", "day", "date", required=True), Col("diagnosis_group", "code")],
        events=[{"event_type": "ae_attendance", "date": "arrival_date", "code": "diagnosis_group", "attributes": ["arrival_time"]}],
        allowed_identifiers=HEALTH))
    S.append(Source(
        "health_visiting", "community_health", "hv-data@provider.example", "Health visitor contacts (child and mother)", "json", ext="jsonl",
        key_prefix="HV", roles=("child", "parent"), build=_hv, optional_role_when={"parent": "motherSurname IS NOT NULL"},
        columns=[Col("contactId", "key", key=True, required=True), pc("child", "nhs_number", "childNhsNumber"),
                 pc("child", "first_name", "childForename"), pc("child", "last_name", "childSurname"), pc("child", "dob", "childDob"),
                 pc("parent", "nhs_number", "motherNhsNumber"), pc("parent", "first_name", "motherForename"),
                 pc("parent", "last_name", "motherSurname"), pc("child", "postcode", "postcode"),
                 Col("contactDate", "day", "date", required=True), Col("contactType", "code"), Col("concernRaised", "concern", "boolean")],
        events=[{"event_type": "health_visiting", "date": "contactDate", "person_role": "child", "code": "contactType", "attributes": ["concernRaised"]}],
        relationships=[{"from_role": "parent", "to_role": "child", "relationship": "parent"}], allowed_identifiers=HEALTH))
    # ---------------------------------------------------------------- gazetteer
    S.append(Source(
        "gazetteer", "council_gis", "gis@council.example", "Local land and property gazetteer: every addressable property", "csv",
        key_prefix="", roles=(), build=_gazetteer,
        columns=[Col("UPRN", "uprn", "long", key=True, required=True), Col("ADDRESS_LINE_1", "line1", required=True),
                 Col("ADDRESS_LINE_2", "line2"), Col("TOWN", "town"), Col("POSTCODE", "postcode", required=True), Col("WARD", "area"),
                 Col("EASTING", "easting", "int"), Col("NORTHING", "northing", "int")]))
    return S
