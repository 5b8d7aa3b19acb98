/* ui.c — the manager page: GET /ui and GET /ui/deal?id=..., server-rendered HTML.
 *
 * No framework and no script: one HTML document per request, built into a bounded buffer,
 * with one inline style sheet that the Content-Security-Policy admits by its SHA-256 hash
 * (default-src 'none': no script, frame, image or connection of any kind). Every value that
 * comes from the log, the config or the query string goes through html() (the five HTML
 * metacharacters become entities) or, inside a link, through url() (percent-encoding of all
 * but unreserved characters), so a deal named <script> is shown as text. Filters are a GET
 * form (owner, cloud, reason, since, until); the same window and cloud drive the KPI tiles.
 * Commission figures are rendered only for a comp reader token. Data: dlog_blocked,
 * dlog_recent, dlog_kpis, dlog_comp_by_rep, dlog_query; docs/manager-page.md.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>
#include <mbedtls/sha256.h>

#include "config/buf.h"
#include "config/money.h"
#include "gate/dlog_overrides.h"
#include "gate/routes.h"

#define UI_MAX_PAGE (8u << 20) /* bytes of one page; beyond, the page is cut with a note */
#define UI_BLOCKED_ROWS 100
#define UI_RECENT_ROWS 25
#define UI_RECENT_SCAN 5000 /* recent decisions matching cloud/reason: among the newest N */
#define UI_HISTORY_ROWS 200
#define UI_REPS 50

static const char ui_css[] =
    ":root{--fg:#1d2330;--mut:#5b6475;--bd:#dde1e8;--bg:#f6f7f9;--blk:#b42318;--ok:#067647}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:var(--fg);background:var(--bg)}"
    "header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;"
    "align-items:baseline;flex-wrap:wrap}"
    "header h1{font-size:1.1rem;margin:0}header a{color:#cfd6e4}"
    "main{max-width:1200px;margin:0 auto;padding:1rem}"
    "section{background:#fff;border:1px solid var(--bd);border-radius:8px;padding:1rem;"
    "margin-bottom:1rem;overflow-wrap:break-word}"
    "h2{font-size:1rem;margin:0 0 .75rem}h2 small{color:var(--mut);font-weight:400}"
    ".tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(11rem,1fr));gap:.75rem}"
    ".tile{border:1px solid var(--bd);border-radius:6px;padding:.6rem}"
    ".tile b{display:block;font-size:1.4rem}.tile span{color:var(--mut);font-size:.85rem}"
    "table{width:100%;border-collapse:collapse}"
    "th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid var(--bd);"
    "vertical-align:top}"
    "th{font-size:.78rem;color:var(--mut);text-transform:uppercase;letter-spacing:.03em;"
    "white-space:nowrap}"
    ".block{color:var(--blk);font-weight:600}.allow{color:var(--ok);font-weight:600}"
    ".num{text-align:right;white-space:nowrap}.muted{color:var(--mut)}"
    "form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}"
    "form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:var(--mut)}"
    "input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid var(--bd);"
    "border-radius:4px;background:#fff}"
    "button{background:#1d2330;color:#fff;border:0}"
    "@media (max-width:700px){thead{display:none}table,tbody,tr,td{display:block;width:100%}"
    "tr{border-bottom:1px solid var(--bd);padding:.4rem 0}td{border:0;padding:.15rem 0}"
    "td::before{content:attr(data-label) ': ';color:var(--mut);font-size:.8rem}"
    ".num{text-align:left}}";

/* The reason codes DESIGN.md calls stable, offered in the reason filter. */
static const char *const ui_codes[] = {
    "registration_missing",
    "registration_not_found",
    "registration_not_accepted",
    "registration_mismatch",
    "registration_unverifiable",
    "registration_unlinked",
    "clouds_missing",
    "stage_unknown",
};

/* ---- the page buffer ----------------------------------------------------------------------- */

/* A page: its text and NUL fit UI_MAX_PAGE bytes. */
static void page_buf(dg_buf *b)
{
    dg_buf_init(b, UI_MAX_PAGE - 1);
}

/* Trusted text: literals of this file. */
static void raw(dg_buf *b, const char *s)
{
    dg_buf_str(b, s);
}

/* Formatted trusted text (numbers, and strings that went through html()/url() first). */
static void rawf(dg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rawf(dg_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    dg_buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Any value: HTML-escaped, for text and for quoted attribute values. NULL writes nothing. */
static void html(dg_buf *b, const char *s)
{
    if (s == NULL) return;
    const char *run = s;
    for (; *s; s++) {
        const char *ent = NULL;
        switch (*s) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            continue;
        }
        dg_buf_add(b, run, (size_t)(s - run));
        raw(b, ent);
        run = s + 1;
    }
    dg_buf_add(b, run, (size_t)(s - run));
}

/* A value inside a URL's query: every byte but unreserved ones percent-encoded (the output
 * then needs no HTML escaping). */
static void url(dg_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            dg_buf_add(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            dg_buf_add(b, e, 3);
        }
    }
}

/* ---- values ------------------------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jnum(const cJSON *o, const char *k, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) return 0;
    *out = v->valuedouble;
    return 1;
}

/* "2026-10-01 09:00 UTC" of unix ms. */
static void when_text(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, n, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(out, n, "?");
}

/* A decision's RFC 3339 UTC time ("2026-10-01T09:00:00Z") as "2026-10-01 09:00 UTC"; other
 * text as it is. */
static void time_text(dg_buf *b, const char *t)
{
    if (t && strlen(t) >= 17 && t[10] == 'T' && t[strlen(t) - 1] == 'Z') {
        char out[24];
        snprintf(out, sizeof out, "%.10s %.5s UTC", t, t + 11);
        html(b, out);
    } else {
        html(b, t);
    }
}

/* "3 d", "5 h", "12 min" between then and now (ms). */
static void ago_text(int64_t then, int64_t now, char *out, size_t n)
{
    int64_t s = (now - then) / 1000;
    if (s < 0) s = 0;
    if (s >= 86400)
        snprintf(out, n, "%" PRId64 " d", s / 86400);
    else if (s >= 3600)
        snprintf(out, n, "%" PRId64 " h", s / 3600);
    else
        snprintf(out, n, "%" PRId64 " min", s / 60);
}

/* "120,000.00 USD" of minor units; "" when unknown. */
static void amount_text(const cJSON *o, char *out, size_t n)
{
    double minor;
    const char *ccy = jstr(o, "currency");
    out[0] = '\0';
    if (!jnum(o, "amount", &minor) || ccy == NULL || !dg_ccy_valid(ccy)) return;
    char amt[DG_MONEY_STRLEN];
    dg_amount_format_grouped((int64_t)minor, dg_ccy_exponent(ccy), amt, sizeof amt);
    snprintf(out, n, "%s %s", amt, ccy);
}

/* A decimal string of ccy shown grouped ("100000.00" -> "100,000.00"). */
static void money_grouped(const char *dec, const char *ccy, char *out, size_t n)
{
    int64_t minor = 0;
    int e = dg_ccy_exponent(ccy);
    if (e < 0 || dg_amount_parse(dec, strlen(dec), e, 0, &minor, NULL, 0) != DG_OK) {
        snprintf(out, n, "%s", dec);
        return;
    }
    dg_amount_format_grouped(minor, e, out, n);
}

static void pct(dg_buf *b, const cJSON *kpi, const char *k)
{
    double v;
    if (jnum(kpi, k, &v))
        rawf(b, "%.1f%%", v * 100.0);
    else
        raw(b, "&mdash;");
}

/* ---- page frame ---------------------------------------------------------------------------- */

static void page_head(dg_buf *b, const char *title)
{
    raw(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           "<meta name=\"referrer\" content=\"no-referrer\"><title>");
    html(b, title);
    raw(b, " &middot; dealgate</title><style>");
    raw(b, ui_css);
    raw(b, "</style></head><body><header><h1>dealgate</h1>"
           "<a href=\"/ui\">Blocked deals</a></header><main>");
}

static void page_foot(dg_buf *b)
{
    raw(b, "</main></body></html>\n");
}

/* Content-Security-Policy admitting exactly ui_css, plus the other response headers. */
static void security_headers(char *out, size_t n)
{
    unsigned char digest[32], b64[64];
    size_t olen = 0;
    mbedtls_sha256_ret((const unsigned char *)ui_css, sizeof ui_css - 1, digest, 0);
    if (mbedtls_base64_encode(b64, sizeof b64, &olen, digest, sizeof digest) != 0) olen = 0;
    b64[olen] = '\0';
    snprintf(out, n,
             "Content-Security-Policy: default-src 'none'; style-src 'sha256-%s'; "
             "form-action 'self'; frame-ancestors 'none'; base-uri 'none'\r\n"
             "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n",
             (const char *)b64);
}

static int reply_page(gate_req *r, int status, dg_buf *b)
{
    if (b->oom) {
        free(b->p);
        return gate_reply_error(r, 503, "overloaded", "out of memory");
    }
    if (b->cut) { /* every add is whole or absent: close the page after the last one */
        b->cut = 0;
        b->max = UI_MAX_PAGE + 1023;
        raw(b, "</table><p class=\"muted\">(page cut: narrow the filters)</p></main></body>"
               "</html>\n");
    }
    char hdr[512];
    security_headers(hdr, sizeof hdr);
    int st = gate_reply_raw(r, status, "text/html; charset=utf-8", b->p ? b->p : "", b->len, hdr);
    free(b->p);
    return st;
}

/* ---- sections ------------------------------------------------------------------------------ */

typedef struct {
    char owner[257], cloud[CFG_NAME_MAX + 1], reason[65];
    char since_in[64], until_in[64]; /* as typed, to refill the form */
    dlog_kpi_query q;
    char since[16], until[16], kcloud[CFG_NAME_MAX + 1];
    int comp;
} ui_params;

static void link_deal(dg_buf *b, const char *opp, const char *label)
{
    raw(b, "<a href=\"/ui/deal?id=");
    url(b, opp);
    raw(b, "\">");
    html(b, label && *label ? label : opp);
    raw(b, "</a>");
}

/* A second, muted line of a cell: text (escaped) under what came before. */
static void muted_line(dg_buf *b, const char *text)
{
    raw(b, "<br><span class=\"muted\">");
    html(b, text);
    raw(b, "</span>");
}

/* The "since" time of row d (unix ms) as a date and, under it, how long ago; nothing when
 * d has none. */
static void since_cell(dg_buf *b, const cJSON *d, int64_t now)
{
    double since;
    if (!jnum(d, "since", &since)) return;
    char w[48], a[32];
    when_text((int64_t)since, w, sizeof w);
    ago_text((int64_t)since, now, a, sizeof a);
    html(b, w);
    muted_line(b, a);
}

/* Amounts {"CCY": "decimal", ...} as "1,234.50 CCY" joined by sep (non-strings skipped).
 * Returns how many were written. */
static int money_list(dg_buf *b, const cJSON *amounts, const char *sep)
{
    const cJSON *s;
    int n = 0;
    cJSON_ArrayForEach(s, amounts)
    {
        if (!cJSON_IsString(s)) continue;
        char g[DG_MONEY_STRLEN];
        money_grouped(s->valuestring, s->string, g, sizeof g);
        if (n++) raw(b, sep);
        html(b, g);
        raw(b, " ");
        html(b, s->string);
    }
    return n;
}

static void filters_form(dg_buf *b, const ui_params *p, const struct cfg *c)
{
    raw(b, "<section><form class=\"filters\" method=\"get\" action=\"/ui\">"
           "<label>Owner<input name=\"owner\" value=\"");
    html(b, p->owner);
    raw(b, "\" placeholder=\"jane@example.com\"></label><label>Cloud<select name=\"cloud\">"
           "<option value=\"\">all</option>");
    for (size_t i = 0; i < c->nclouds; i++) {
        raw(b, "<option value=\"");
        html(b, c->clouds[i].key);
        raw(b, strcmp(p->cloud, c->clouds[i].key) == 0 ? "\" selected>" : "\">");
        html(b, c->clouds[i].name ? c->clouds[i].name : c->clouds[i].key);
        raw(b, "</option>");
    }
    raw(b, "</select></label><label>Reason<select name=\"reason\"><option value=\"\">any</option>");
    int known = p->reason[0] == '\0';
    for (size_t i = 0; i < sizeof ui_codes / sizeof ui_codes[0]; i++) {
        int sel = strcmp(p->reason, ui_codes[i]) == 0;
        known |= sel;
        raw(b, "<option");
        raw(b, sel ? " selected>" : ">");
        html(b, ui_codes[i]);
        raw(b, "</option>");
    }
    if (!known) {
        raw(b, "<option selected>");
        html(b, p->reason);
        raw(b, "</option>");
    }
    raw(b, "</select></label><label>KPIs since<input name=\"since\" value=\"");
    html(b, p->since_in[0] ? p->since_in : p->since);
    raw(b, "\" placeholder=\"YYYY-MM-DD\"></label><label>until<input name=\"until\" value=\"");
    html(b, p->until_in[0] ? p->until_in : p->until);
    raw(b, "\" placeholder=\"YYYY-MM-DD\"></label><button type=\"submit\">Filter</button>"
           "<a href=\"/ui\">reset</a></form></section>");
}

static void tile(dg_buf *b, const char *label)
{
    raw(b, "<div class=\"tile\"><span>");
    html(b, label);
    raw(b, "</span><b>");
}

static void kpi_tiles(dg_buf *b, const cJSON *kpi, const ui_params *p)
{
    raw(b, "<section id=\"kpis\"><h2>Co-sell KPIs <small>");
    html(b, p->since);
    raw(b, " to ");
    html(b, p->until);
    if (p->q.cloud) {
        raw(b, ", ");
        html(b, p->q.cloud);
    }
    raw(b, "</small></h2><div class=\"tiles\">");
    tile(b, "Registration rate");
    pct(b, kpi, "registration_rate");
    raw(b, "</b></div>");
    tile(b, "First-pass rate");
    pct(b, kpi, "first_pass_rate");
    double late = 0;
    jnum(kpi, "late_registrations", &late);
    rawf(b, "</b><span>%.0f late registrations</span></div>", late);
    tile(b, "Win rate, registered");
    pct(b, kpi, "win_rate_registered");
    raw(b, "</b><span>unregistered: ");
    pct(b, kpi, "win_rate_unregistered");
    raw(b, "</span></div>");
    tile(b, "Inbound share");
    pct(b, kpi, "inbound_share");
    raw(b, "</b><span>verified registrations from the cloud</span></div>");
    tile(b, "Median days, registration to close");
    double med;
    if (jnum(kpi, "median_days_registration_to_close", &med))
        rawf(b, "%.1f", med);
    else
        raw(b, "&mdash;");
    raw(b, "</b></div>");
    tile(b, "Attributed revenue");
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(kpi, "attributed_revenue"), *cl, *am;
    int any = 0;
    cJSON_ArrayForEach(cl, rev)
    {
        cJSON_ArrayForEach(am, cl)
        {
            if (!cJSON_IsString(am)) continue;
            char g[DG_MONEY_STRLEN];
            money_grouped(am->valuestring, am->string, g, sizeof g);
            raw(b, any ? "<br>" : "</b><span>");
            html(b, cl->string);
            raw(b, ": ");
            html(b, g);
            raw(b, " ");
            html(b, am->string);
            any = 1;
        }
    }
    raw(b, any ? "</span></div>" : "&mdash;</b></div>");
    tile(b, "Blocks by reason");
    const cJSON *bc = cJSON_GetObjectItemCaseSensitive(kpi, "blocks_by_code"), *code;
    double total = 0;
    cJSON_ArrayForEach(code, bc) total += code->valuedouble;
    rawf(b, "%.0f</b><span>", total);
    cJSON_ArrayForEach(code, bc)
    {
        html(b, code->string);
        rawf(b, ": %.0f<br>", code->valuedouble);
    }
    raw(b, "</span></div>");
    if (p->comp) {
        tile(b, "Comp violations");
        double v = 0;
        jnum(kpi, "comp_violations", &v);
        rawf(b, "%.0f</b><span>shortfall: ", v);
        int n = money_list(b, cJSON_GetObjectItemCaseSensitive(kpi, "comp_total_shortfall"), ", ");
        raw(b, n ? "</span></div>" : "none</span></div>");
    }
    raw(b, "</div></section>");
}

static void blocked_table(dg_buf *b, const cJSON *bl, int64_t now)
{
    double total = 0;
    jnum(bl, "total", &total);
    const cJSON *deals = cJSON_GetObjectItemCaseSensitive(bl, "deals"), *d;
    int shown = cJSON_GetArraySize(deals);
    int more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(bl, "more"));
    rawf(b, "<section id=\"blocked\"><h2>Blocked now <small>%.0f%s deal%s", total, more ? "+" : "",
         total == 1 && !more ? "" : "s");
    if (total > shown) rawf(b, ", the %d most recent shown", shown);
    raw(b, "</small></h2>");
    if (shown == 0) {
        raw(b, "<p class=\"muted\">No deal is blocked.</p></section>");
        return;
    }
    raw(b, "<table><thead><tr><th>Deal</th><th>Owner</th><th class=\"num\">Amount</th>"
           "<th>Cloud</th><th>Stage tried</th><th>Reason</th><th>Blocked since</th></tr></thead>"
           "<tbody>");
    cJSON_ArrayForEach(d, deals)
    {
        raw(b, "<tr class=\"deal\"><td data-label=\"Deal\">");
        link_deal(b, jstr(d, "opportunity_id"), jstr(d, "name"));
        const char *acct = jstr(d, "account");
        if (acct) muted_line(b, acct);
        raw(b, "</td><td data-label=\"Owner\">");
        html(b, jstr(d, "owner"));
        char amt[DG_MONEY_STRLEN + 8];
        amount_text(d, amt, sizeof amt);
        raw(b, "</td><td class=\"num\" data-label=\"Amount\">");
        html(b, amt);
        raw(b, "</td><td data-label=\"Cloud\">");
        const cJSON *c;
        int k = 0;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(d, "clouds"))
        {
            if (!cJSON_IsString(c)) continue;
            if (k++) raw(b, ", ");
            html(b, c->valuestring);
        }
        raw(b, "</td><td data-label=\"Stage tried\">");
        html(b, jstr(d, "stage"));
        raw(b, "</td><td class=\"reason\" data-label=\"Reason\">");
        html(b, jstr(d, "message"));
        raw(b, "</td><td data-label=\"Blocked since\">");
        since_cell(b, d, now);
        raw(b, "</td></tr>");
    }
    raw(b, "</tbody></table></section>");
}

/* Deals whose registration lapsed after passing the gate (dlog_lapsed_deals). */
static void lapsed_table(dg_buf *b, const cJSON *lp, int64_t now)
{
    double total = 0;
    jnum(lp, "total", &total);
    const cJSON *deals = cJSON_GetObjectItemCaseSensitive(lp, "deals"), *d;
    int shown = cJSON_GetArraySize(deals);
    if (total <= 0) return; /* nothing lapsed: no section */
    rawf(b, "<section id=\"lapsed\"><h2>Registrations lapsed <small>%.0f deal%s", total,
         total == 1 ? "" : "s");
    if (total > shown) rawf(b, ", the %d most recent shown", shown);
    raw(b, "</small></h2><table><thead><tr><th>Deal</th><th>Owner</th><th>Stage</th>"
           "<th>Cloud</th><th>Registration</th><th>Reason</th><th>Lapsed</th></tr></thead><tbody>");
    cJSON_ArrayForEach(d, deals)
    {
        raw(b, "<tr class=\"lapsed\"><td data-label=\"Deal\">");
        link_deal(b, jstr(d, "opportunity_id"), jstr(d, "name"));
        raw(b, "</td><td data-label=\"Owner\">");
        html(b, jstr(d, "owner"));
        raw(b, "</td><td data-label=\"Stage\">");
        html(b, jstr(d, "stage"));
        raw(b, "</td><td data-label=\"Cloud\">");
        html(b, jstr(d, "cloud"));
        raw(b, "</td><td data-label=\"Registration\">");
        html(b, jstr(d, "registration_id"));
        if (jstr(d, "status")) {
            raw(b, " <span class=\"muted\">");
            html(b, jstr(d, "status"));
            raw(b, "</span>");
        }
        raw(b, "</td><td class=\"reason\" data-label=\"Reason\">");
        html(b, jstr(d, "message"));
        raw(b, "</td><td data-label=\"Lapsed\">");
        since_cell(b, d, now);
        raw(b, "</td></tr>");
    }
    raw(b, "</tbody></table></section>");
}

/* Live deal-desk overrides (dlog_override_query active=1). */
static void overrides_table(dg_buf *b, const cJSON *ov)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(ov, "overrides"), *o;
    int n = cJSON_GetArraySize(list);
    if (n == 0) return; /* none live: no section */
    rawf(b, "<section id=\"overrides\"><h2>Overrides in force <small>%d</small></h2>", n);
    raw(b, "<table><thead><tr><th>Deal</th><th>Rule</th><th>Approved by</th><th>Reason</th>"
           "<th>Expires</th><th class=\"num\">Decisions let through</th></tr></thead><tbody>");
    cJSON_ArrayForEach(o, list)
    {
        raw(b, "<tr class=\"override\"><td data-label=\"Deal\">");
        link_deal(b, jstr(o, "opportunity_id"), NULL);
        muted_line(b, jstr(o, "id"));
        raw(b, "</td><td data-label=\"Rule\">");
        html(b, jstr(o, "rule"));
        raw(b, "</td><td data-label=\"Approved by\">");
        html(b, jstr(o, "approved_by"));
        raw(b, "</td><td class=\"reason\" data-label=\"Reason\">");
        html(b, jstr(o, "reason"));
        raw(b, "</td><td data-label=\"Expires\">");
        time_text(b, jstr(o, "expires_at"));
        double used = 0;
        jnum(o, "used", &used);
        rawf(b, "</td><td class=\"num\" data-label=\"Decisions let through\">%.0f</td></tr>", used);
    }
    raw(b, "</tbody></table></section>");
}

static void decision_rows(dg_buf *b, const cJSON *decisions, int with_deal)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, decisions)
    {
        const char *outcome = jstr(d, "outcome");
        int blocked = outcome && strcmp(outcome, "block") == 0;
        raw(b, "<tr><td data-label=\"Time\">");
        time_text(b, jstr(d, "time"));
        raw(b, "</td>");
        if (with_deal) {
            raw(b, "<td data-label=\"Deal\">");
            link_deal(b, jstr(d, "opportunity_id"), jstr(d, "name"));
            raw(b, "</td><td data-label=\"Owner\">");
            html(b, jstr(d, "owner"));
            raw(b, "</td>");
        }
        raw(b, "<td data-label=\"Move\">");
        const char *from = jstr(d, "from_stage"), *to = jstr(d, "to_stage");
        html(b, from ? from : "?");
        raw(b, " &rarr; ");
        html(b, to ? to : jstr(d, "to_value"));
        raw(b, blocked ? "</td><td data-label=\"Outcome\" class=\"block\">"
                       : "</td><td data-label=\"Outcome\" class=\"allow\">");
        html(b, outcome);
        const char *mode = jstr(d, "mode");
        if (mode && strcmp(mode, "report") == 0) raw(b, " <span class=\"muted\">(report)</span>");
        raw(b, "</td><td data-label=\"Reason\">");
        const char *msg = jstr(d, "message");
        if (msg && *msg) {
            html(b, msg);
        } else {
            const cJSON *w;
            int k = 0;
            cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(d, "warnings"))
            {
                raw(b, k++ ? ", " : "<span class=\"muted\">warning: ");
                html(b, jstr(w, "code"));
            }
            if (k) raw(b, "</span>");
        }
        raw(b, "</td></tr>");
    }
}

static void recent_table(dg_buf *b, const cJSON *rec, const ui_params *p)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(rec, "decisions");
    raw(b, "<section id=\"recent\"><h2>Recent decisions");
    if (p->cloud[0] || p->reason[0])
        rawf(b, " <small>(among the newest %d)</small>", UI_RECENT_SCAN);
    raw(b, "</h2>");
    if (cJSON_GetArraySize(arr) == 0) {
        raw(b, "<p class=\"muted\">No decision yet.</p></section>");
        return;
    }
    raw(b, "<table><thead><tr><th>Time</th><th>Deal</th><th>Owner</th><th>Move</th>"
           "<th>Outcome</th><th>Reason</th></tr></thead><tbody>");
    decision_rows(b, arr, 1);
    raw(b, "</tbody></table></section>");
}

static void comp_table(dg_buf *b, const cJSON *reps, const ui_params *p)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(reps, "reps"), *r;
    raw(b, "<section id=\"comp\"><h2>Commission violations by rep <small>");
    html(b, p->since);
    raw(b, " to ");
    html(b, p->until);
    raw(b, "</small></h2>");
    if (cJSON_GetArraySize(arr) == 0) {
        raw(b, "<p class=\"muted\">No violation in this window.</p></section>");
        return;
    }
    raw(b, "<table><thead><tr><th>Rep</th><th class=\"num\">Violations</th>"
           "<th class=\"num\">Shortfall</th></tr></thead><tbody>");
    cJSON_ArrayForEach(r, arr)
    {
        double n = 0;
        jnum(r, "violations", &n);
        raw(b, "<tr><td data-label=\"Rep\">");
        const char *rep = jstr(r, "rep");
        html(b, rep && *rep ? rep : "(no rep)");
        rawf(b, "</td><td class=\"num\" data-label=\"Violations\">%.0f</td>", n);
        raw(b, "<td class=\"num\" data-label=\"Shortfall\">");
        money_list(b, cJSON_GetObjectItemCaseSensitive(r, "shortfall"), "<br>");
        raw(b, "</td></tr>");
    }
    raw(b, "</tbody></table></section>");
}

/* ---- handlers ------------------------------------------------------------------------------ */

/* Reads a text parameter; 0 when fine (absent = ""), else the 422 it answered. */
static int text_param(gate_req *r, const char *name, char *buf, size_t cap)
{
    int n = gate_query(r, name, buf, cap);
    if (n < 0)
        return gate_reply_error(r, 422, "invalid_field", "query parameter %s is too long", name);
    if (n == 0) buf[0] = '\0';
    return 0;
}

static cJSON *parse_free(char *json)
{
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    free(json);
    return o;
}

int gate_h_ui(gate_req *r)
{
    ui_params p = {0};
    int st;
    if ((st = text_param(r, "owner", p.owner, sizeof p.owner)) != 0 ||
        (st = text_param(r, "reason", p.reason, sizeof p.reason)) != 0 ||
        (st = text_param(r, "since", p.since_in, sizeof p.since_in)) != 0 ||
        (st = text_param(r, "until", p.until_in, sizeof p.until_in)) != 0 ||
        (st = text_param(r, "cloud", p.cloud, sizeof p.cloud)) != 0)
        return st;
    if ((st = gate_kpi_window(r, &p.q, p.since, p.until, p.kcloud)) != 0) return st;
    if (p.q.cloud) snprintf(p.cloud, sizeof p.cloud, "%s", p.q.cloud); /* canonical key */
    p.comp = p.q.comp;

    dlog_ui_filter f = {.owner = p.owner[0] ? p.owner : NULL,
                        .cloud = p.q.cloud,
                        .reason = p.reason[0] ? p.reason : NULL,
                        .limit = UI_BLOCKED_ROWS};
    char *json = NULL, err[256];
    cJSON *blocked = NULL, *recent = NULL, *kpi = NULL, *reps = NULL;
    cJSON *lapsed = NULL, *overrides = NULL; /* re-verification, deal-desk overrides */
    /* the status answered; -1 until then (the log could not be read: 503) */
    int status = -1;
    if (dlog_blocked(r->g->log, &f, &json, err, sizeof err) != DG_OK) goto done;
    blocked = parse_free(json);
    f.limit = UI_RECENT_ROWS;
    if (dlog_recent(r->g->log, &f, UI_RECENT_SCAN, &json, err, sizeof err) != DG_OK) goto done;
    recent = parse_free(json);
    if (dlog_kpis(r->g->log, &p.q, &json, err, sizeof err) != DG_OK) goto done;
    kpi = parse_free(json);
    if (p.comp) {
        if (dlog_comp_by_rep(r->g->log, &p.q, UI_REPS, &json, err, sizeof err) != DG_OK) goto done;
        reps = parse_free(json);
    }
    if (dlog_lapsed_deals(r->g->log, f.owner, UI_BLOCKED_ROWS, &json) != DG_OK) goto done;
    lapsed = parse_free(json);
    dlog_override_filter of = {.active_only = 1, .now_ms = gate_now_ms(), .limit = UI_RECENT_ROWS};
    if (dlog_override_query(r->g->log, &of, &json, err, sizeof err) != DG_OK) goto done;
    overrides = parse_free(json);
    if (!blocked || !recent || !kpi || (p.comp && !reps) || !lapsed || !overrides) goto done;
    {
        dg_buf b;
        page_buf(&b);
        page_head(&b, "Blocked deals");
        filters_form(&b, &p, r->rt->cfg);
        blocked_table(&b, blocked, gate_now_ms());
        lapsed_table(&b, lapsed, gate_now_ms());
        overrides_table(&b, overrides);
        kpi_tiles(&b, kpi, &p);
        recent_table(&b, recent, &p);
        if (p.comp) comp_table(&b, reps, &p);
        page_foot(&b);
        status = reply_page(r, 200, &b);
    }
done:
    cJSON_Delete(blocked);
    cJSON_Delete(recent);
    cJSON_Delete(kpi);
    cJSON_Delete(reps);
    cJSON_Delete(lapsed);
    cJSON_Delete(overrides);
    if (status < 0)
        status = gate_reply_error(r, 503, "log_unavailable", "the decision log cannot be read");
    return status;
}

int gate_h_ui_deal(gate_req *r)
{
    char id[DG_ID_MAX + 2];
    int n = gate_query(r, "id", id, sizeof id);
    if (n <= 0 || id[0] == '\0')
        return gate_reply_error(r, 422, "invalid_field",
                                "query parameter id (the opportunity id) is required");
    dlog_filter q = {.opportunity = id, .limit = UI_HISTORY_ROWS};
    char *json = NULL, err[256];
    if (dlog_query(r->g->log, &q, &json, err, sizeof err) != DG_OK)
        return gate_reply_error(r, 503, "log_unavailable", "the decision log cannot be read");
    cJSON *page = parse_free(json);
    if (page == NULL) return gate_reply_error(r, 503, "overloaded", "out of memory");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(page, "decisions");
    const cJSON *newest = cJSON_GetArrayItem(arr, 0);
    const char *name = newest ? jstr(newest, "name") : NULL;
    dg_buf b;
    page_buf(&b);
    page_head(&b, name ? name : id);
    raw(&b, "<section id=\"deal\"><h2>");
    html(&b, name ? name : id);
    raw(&b, " <small>");
    html(&b, id);
    if (newest && jstr(newest, "owner")) {
        raw(&b, " &middot; ");
        html(&b, jstr(newest, "owner"));
    }
    raw(&b, "</small></h2>");
    if (newest == NULL) {
        raw(&b, "<p class=\"muted\">No decision is logged for this deal.</p></section>");
    } else {
        rawf(&b,
             "<p class=\"muted\">%d decision%s, newest first%s. JSON: <a "
             "href=\"/v1/decisions?opportunity=",
             cJSON_GetArraySize(arr), cJSON_GetArraySize(arr) == 1 ? "" : "s",
             cJSON_GetArraySize(arr) == UI_HISTORY_ROWS ? " (the latest only)" : "");
        url(&b, id);
        raw(&b, "\">/v1/decisions</a></p><table><thead><tr><th>Time</th><th>Move</th>"
                "<th>Outcome</th><th>Reason</th></tr></thead><tbody>");
        decision_rows(&b, arr, 0);
        raw(&b, "</tbody></table>");
        /* the registrations the newest decision that looked any up saw */
        const cJSON *d;
        cJSON_ArrayForEach(d, arr)
        {
            const cJSON *regs = cJSON_GetObjectItemCaseSensitive(d, "registrations"), *g;
            if (cJSON_GetArraySize(regs) == 0) continue;
            raw(&b, "<h2>Registrations <small>as of ");
            time_text(&b, jstr(d, "time"));
            raw(&b, "</small></h2><table><thead><tr><th>Cloud</th><th>Id</th><th>Status</th>"
                    "<th>Verified</th><th>Created</th><th>Origin</th></tr></thead><tbody>");
            cJSON_ArrayForEach(g, regs)
            {
                const char *cols[] = {"cloud", "id", "status", NULL, "created_at", "origin"};
                const char *labels[] = {"Cloud", "Id", "Status", "Verified", "Created", "Origin"};
                raw(&b, "<tr>");
                for (int i = 0; i < 6; i++) {
                    raw(&b, "<td data-label=\"");
                    raw(&b, labels[i]);
                    raw(&b, "\">");
                    if (cols[i])
                        html(&b, jstr(g, cols[i]));
                    else
                        raw(&b, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(g, "verified"))
                                    ? "yes"
                                    : "no");
                    raw(&b, "</td>");
                }
                raw(&b, "</tr>");
            }
            raw(&b, "</tbody></table>");
            break;
        }
        raw(&b, "</section>");
    }
    page_foot(&b);
    cJSON_Delete(page);
    return reply_page(r, newest ? 200 : 404, &b);
}
