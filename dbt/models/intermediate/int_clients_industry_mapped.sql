-- One row per CRM client: GB/T 4754-2017 placement of its industry_code.
-- SME industry group = sme_group_code of the LONGEST code_prefix in seed industry_divisions that is a
-- prefix of industry_code (class rows like K7010 beat division rows like K70, which beat the bare
-- section-letter fallback row). Codes whose first letter is no GB/T 4754 section get no group.
with clients as (
    select client_key, industry_code, industry_section
    from {{ ref('stg_crm__clients') }}
),

divisions as (
    select code_prefix, section_code, division_name_en, sme_group_code
    from {{ ref('industry_divisions') }}
),

prefix_matches as (
    select
        c.client_key,
        d.code_prefix,
        d.division_name_en,
        d.sme_group_code,
        row_number() over (partition by c.client_key order by length(d.code_prefix) desc) as match_rank
    from clients as c
    inner join divisions as d
        on substring(c.industry_code, 1, length(d.code_prefix)) = d.code_prefix
),

best_match as (
    select * from prefix_matches where match_rank = 1
)

select
    c.client_key,
    c.industry_code,
    c.industry_section,
    case when length(c.industry_code) >= 3 then substring(c.industry_code, 1, 3) end as industry_division_code,
    m.code_prefix as industry_matched_prefix,
    m.division_name_en as industry_matched_name,
    case length(m.code_prefix)
        when 1 then 'section_fallback'
        when 3 then 'division'
        when 5 then 'class'
        else 'unmapped'
    end as industry_match_level,
    coalesce(m.sme_group_code, 'unmapped') as industry_group,
    coalesce(s.industry_risk_class, 'unknown') as industry_risk_class,
    -- Internal technology-firm rule: GB/T 4754-2017 divisions I63 telecom/broadcast/satellite transmission,
    -- I64 internet, I65 software and IT services, M73 R&D, M75 technology promotion, C39 computers and
    -- electronic equipment. I63-I65 make up all of section I, so a bare 'I' code also counts.
    coalesce(
        c.industry_section = 'I'
        or substring(c.industry_code, 1, 3) in ('I63', 'I64', 'I65', 'M73', 'M75', 'C39'),
        false
    ) as technology_firm
from clients as c
left join best_match as m
    on c.client_key = m.client_key
left join {{ ref('industry_sections') }} as s
    on c.industry_section = s.section_code
