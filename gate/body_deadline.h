/* body_deadline.h — a hard deadline for reading one request body.
 *
 * civetweb bounds each socket read by request_timeout_ms, not a whole body: mg_read() waits
 * until it has every byte asked for, and a client that sends one byte a second resets the
 * timeout with each byte, holding a worker thread for as long as it likes. A deadline
 * armed before reading is watched by one thread for the whole process; when it passes, that
 * thread finds the connection's socket by its address pair and shuts it down for reading,
 * so the blocked mg_read() returns at once and the handler can answer 408. Cost when the
 * body arrives in time: a list insert and unlink under a mutex, no system call.
 */
#ifndef DG_BODY_DEADLINE_H
#define DG_BODY_DEADLINE_H

#include <civetweb.h>

typedef struct gate_body_deadline gate_body_deadline;

/* Arms a deadline timeout_ms from now for the connection of ri (borrowed for the call).
 * Returns the deadline (end it with gate_body_deadline_end), or NULL when none could be
 * armed (timeout_ms <= 0, no memory, no timer): reading then has civetweb's bound only. */
gate_body_deadline *gate_body_deadline_start(const struct mg_request_info *ri, int timeout_ms);

/* Disarms d and frees it (NULL is a no-op). Returns 1 if the deadline fired (the socket was
 * shut down for reading: the body is incomplete and nothing more can be read), else 0. */
int gate_body_deadline_end(gate_body_deadline *d);

#endif
