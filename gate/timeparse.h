/* timeparse.h — parsing the times people and CRM exports write, into unix milliseconds.
 *
 * Strict: RFC 3339 date-time, "2026-10-01T09:00:00Z", fractions allowed, "Z" or a
 * "+02:00" offset required (what the API takes, e.g. an override's expires_at). Lenient
 * (CRM exports and declarative test cases): also a date alone ("2026-10-01", midnight UTC),
 * a space instead of "T", minutes without seconds, offsets written "+0000" (Salesforce),
 * no zone at all (taken as UTC), or unix milliseconds (10-13 digits: seconds when 10).
 * Pure functions, no locale, no clock.
 */
#ifndef DG_TIMEPARSE_H
#define DG_TIMEPARSE_H

#include <stdint.h>

/* Parses s. Returns 1 and *ms, or 0 if s is not such a time (or outside 1970..9999). */
int gate_time_parse(const char *s, int lenient, int64_t *ms);

/* Formats unix ms as "2026-10-01T09:00:00Z" (seconds precision) into out. */
void gate_time_format(int64_t ms, char out[32]);

#endif
