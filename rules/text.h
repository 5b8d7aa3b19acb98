/* text.h — bounded one-line text for reason messages (internal to rules/).
 *
 * A rules_text is a fixed buffer on the caller's stack: appending never allocates and never
 * fails. Everything appended is made one line (control characters become spaces), because
 * values come from the CRM and the config and end up in a CRM field or toast. Text beyond
 * RULES_TEXT_MAX - 1 bytes is cut at a UTF-8 character boundary and ends with "...".
 * rules_text_template() expands a rule's message template ({cloud}, {cloud_name}, {stage},
 * {deal}, {id}, {rule}; anything else in braces is kept as written).
 */
#ifndef DG_RULES_TEXT_H
#define DG_RULES_TEXT_H

#include <stddef.h>

#define RULES_TEXT_MAX 512 /* bytes of one reason message, NUL included */

typedef struct {
    char s[RULES_TEXT_MAX];
    size_t len;
    int cut; /* something did not fit */
} rules_text;

/* Values for the placeholders of a message template; NULL expands to "". Borrowed. */
typedef struct {
    const char *cloud;      /* {cloud}: cloud key */
    const char *cloud_name; /* {cloud_name}: the cloud's display name */
    const char *stage;      /* {stage}: the stage the deal is moving to */
    const char *deal;       /* {deal}: the deal's name, else its CRM id */
    const char *id;         /* {id}: the deal's CRM opportunity id */
    const char *rule;       /* {rule}: the rule's name */
} rules_text_vars;

/* Empties t. */
void rules_text_init(rules_text *t);

/* Appends s (NULL appends nothing), control characters replaced by spaces. */
void rules_text_add(rules_text *t, const char *s);

/* Appends the formatted text, with the same replacement. */
void rules_text_addf(rules_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends tmpl with its placeholders expanded from v. */
void rules_text_template(rules_text *t, const char *tmpl, const rules_text_vars *v);

/* Returns the NUL-terminated text (valid while t lives); a cut text ends with "...". */
const char *rules_text_str(rules_text *t);

#endif
