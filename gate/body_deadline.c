/* body_deadline.c — a hard deadline for reading one request body (see body_deadline.h).
 *
 * One watchdog thread ("dg-deadline", started with the first deadline) keeps every armed
 * deadline in a list under one mutex and sleeps until the earliest of them (at most a
 * second). Arming and ending a deadline is a list insert and unlink, no system call. When
 * a deadline passes while its reader is still reading, the watchdog marks it busy, drops
 * the mutex, and shuts the connection's socket down for reading; ending a deadline waits
 * while it is busy, so the socket it shuts is still the request's.
 *
 * The socket is found in /proc/self/fd by its peer address and port and its local port,
 * which name one TCP connection while it is open; only when a deadline fires.
 */
#include "gate/body_deadline.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "connectors/http.h" /* conn_now_ms and the CLOCK_MONOTONIC condition variable */

struct gate_body_deadline {
    gate_body_deadline *prev, *next; /* in the watchdog's list (guarded by mu) */
    int64_t due_ms;                  /* conn_now_ms() time */
    int busy;                        /* the watchdog is shutting the socket (guarded by mu) */
    int tried;                       /* it has tried (guarded by mu) */
    int fired;                       /* the socket was shut down for reading (guarded by mu) */
    char addr[INET6_ADDRSTRLEN];
    int port, local_port;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;      /* the watchdog: a deadline earlier than it planned */
static pthread_cond_t done;      /* end(): a busy deadline is done */
static gate_body_deadline *head; /* guarded by mu */
static int64_t planned_ms;       /* when the watchdog wakes next (guarded by mu) */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int started; /* the watchdog runs (set once, under once) */

/* Port of a socket address, and its address as text (inet_ntop). Returns 0 or -1. */
static int addr_of(const struct sockaddr_storage *ss, char *buf, size_t n, int *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        *port = ntohs(a->sin_port);
        return inet_ntop(AF_INET, &a->sin_addr, buf, (socklen_t)n) ? 0 : -1;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        *port = ntohs(a->sin6_port);
        return inet_ntop(AF_INET6, &a->sin6_addr, buf, (socklen_t)n) ? 0 : -1;
    }
    return -1;
}

/* Shuts down for reading the socket whose peer is d->addr:d->port and whose local port is
 * d->local_port. Returns 1 if found. */
static int shut_socket(const gate_body_deadline *d)
{
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(dir)) != NULL) {
        char *end = NULL;
        errno = 0;
        long fd = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || errno != 0 || fd < 0 || fd > 1 << 24 ||
            fd == dirfd(dir))
            continue;
        struct sockaddr_storage peer, local;
        socklen_t pl = sizeof peer, ll = sizeof local;
        char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
        int pport = -1, lport = -1;
        if (getpeername((int)fd, (struct sockaddr *)&peer, &pl) != 0 ||
            getsockname((int)fd, (struct sockaddr *)&local, &ll) != 0 ||
            addr_of(&peer, a, sizeof a, &pport) != 0 || addr_of(&local, b, sizeof b, &lport) != 0)
            continue;
        if (pport == d->port && lport == d->local_port && strcmp(a, d->addr) == 0) {
            shutdown((int)fd, SHUT_RD);
            found = 1;
        }
    }
    closedir(dir);
    return found;
}

/* The watchdog: sleeps until the earliest deadline (at most 1 s), then shuts the sockets of
 * those past due whose readers still read. Runs for the life of the process. */
static void *watchdog(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        int64_t now = conn_now_ms(), next = now + 1000;
        gate_body_deadline *due = NULL;
        for (gate_body_deadline *d = head; d; d = d->next) {
            if (d->tried) continue;
            if (d->due_ms <= now) {
                due = d;
                break;
            }
            if (d->due_ms < next) next = d->due_ms;
        }
        if (due) {
            due->busy = 1;
            pthread_mutex_unlock(&mu);
            int shut = shut_socket(due);
            pthread_mutex_lock(&mu);
            due->fired = shut;
            due->tried = 1;
            due->busy = 0;
            pthread_cond_broadcast(&done);
            continue;
        }
        planned_ms = next;
        conn_cond_wait_until(&wake, &mu, next);
    }
    return NULL;
}

static void start_watchdog(void)
{
    if (conn_cond_init_monotonic(&wake) != 0) return; /* no watchdog: no deadlines */
    pthread_cond_init(&done, NULL);
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, watchdog, NULL) == 0) {
        pthread_setname_np(t, "dg-deadline");
        started = 1;
    }
    pthread_attr_destroy(&at);
}

gate_body_deadline *gate_body_deadline_start(const struct mg_request_info *ri, int timeout_ms)
{
    if (timeout_ms <= 0 || ri == NULL) return NULL;
    pthread_once(&once, start_watchdog);
    if (!started) return NULL;
    size_t n = strlen(ri->remote_addr);
    gate_body_deadline *d = n < INET6_ADDRSTRLEN ? calloc(1, sizeof *d) : NULL;
    if (d == NULL) return NULL;
    d->port = ri->remote_port;
    d->local_port = ri->server_port;
    memcpy(d->addr, ri->remote_addr, n + 1);
    d->due_ms = conn_now_ms() + timeout_ms;
    pthread_mutex_lock(&mu);
    d->next = head;
    if (head) head->prev = d;
    head = d;
    if (d->due_ms < planned_ms) pthread_cond_signal(&wake);
    pthread_mutex_unlock(&mu);
    return d;
}

int gate_body_deadline_end(gate_body_deadline *d)
{
    if (d == NULL) return 0;
    pthread_mutex_lock(&mu);
    while (d->busy)
        pthread_cond_wait(&done, &mu);
    if (d->prev)
        d->prev->next = d->next;
    else
        head = d->next;
    if (d->next) d->next->prev = d->prev;
    int fired = d->fired;
    pthread_mutex_unlock(&mu);
    free(d);
    return fired;
}
