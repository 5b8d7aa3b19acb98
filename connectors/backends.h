/* backends.h — the registry backends, one conn_backend per connector kind.
 *
 * Each backend is defined in its own file (file.c, none.c, ace.c, partner_center.c, gcp.c)
 * as a const conn_backend filled with its ops; conn.c maps a cfg_connector kind to one of
 * them (conn_backend_for). Only conn.c and the backend tests include this header: the rest
 * of the program goes through conn.h and never names a specific backend.
 */
#ifndef DG_CONN_BACKENDS_H
#define DG_CONN_BACKENDS_H

#include "connectors/conn.h"

extern const conn_backend conn_file_backend;           /* connectors/file.c */
extern const conn_backend conn_none_backend;           /* connectors/none.c */
extern const conn_backend conn_ace_backend;            /* connectors/ace.c */
extern const conn_backend conn_partner_center_backend; /* connectors/partner_center.c */
extern const conn_backend conn_gcp_backend;            /* connectors/gcp.c */

/* Returns 1 if id is 1-128 bytes with no control character (bytes below 0x20, 0x7f) and no
 * leading or trailing space: the id syntax of the file and none connectors (conn.c). */
int conn_printable_id(const char *id);

#endif
