/* body_deadline.c — a hard deadline for reading one request body (see body_deadline.h).
 *
 * A one-shot POSIX timer (SIGEV_THREAD) per body. Ownership is settled without a race: the
 * deadline starts with two references, the reader's and the timer callback's. On end the
 * timer is disarmed with timer_settime(), which returns what was left atomically: time
 * left means the callback will never run and the reader drops both references; none left
 * means the timer fired and the callback runs (or ran) and drops its own. The callback
 * acts only while the reader is still reading (under the mutex, so the socket it shuts is
 * still the request's: the reader cannot finish the request while the callback holds it).
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
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct gate_body_deadline {
    pthread_mutex_t mu;
    int refs;    /* the reader's and the timer callback's (guarded by mu) */
    int reading; /* the reader has not ended the deadline yet (guarded by mu) */
    int fired;   /* the socket was shut down for reading (guarded by mu) */
    timer_t timer;
    char addr[INET6_ADDRSTRLEN];
    int port, local_port;
};

static void unref(gate_body_deadline *d, int n)
{
    pthread_mutex_lock(&d->mu);
    d->refs -= n;
    int last = d->refs == 0;
    pthread_mutex_unlock(&d->mu);
    if (last) {
        pthread_mutex_destroy(&d->mu);
        free(d);
    }
}

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

static void on_deadline(union sigval v)
{
    gate_body_deadline *d = v.sival_ptr;
    pthread_mutex_lock(&d->mu);
    if (d->reading && shut_socket(d)) d->fired = 1;
    pthread_mutex_unlock(&d->mu);
    unref(d, 1);
}

gate_body_deadline *gate_body_deadline_start(const struct mg_request_info *ri, int timeout_ms)
{
    if (timeout_ms <= 0 || ri == NULL) return NULL;
    gate_body_deadline *d = calloc(1, sizeof *d);
    if (d == NULL) return NULL;
    pthread_mutex_init(&d->mu, NULL);
    d->refs = 2;
    d->reading = 1;
    d->port = ri->remote_port;
    d->local_port = ri->server_port;
    size_t n = strlen(ri->remote_addr);
    if (n >= sizeof d->addr) goto fail;
    memcpy(d->addr, ri->remote_addr, n + 1);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = on_deadline;
    sev.sigev_value.sival_ptr = d;
    if (timer_create(CLOCK_MONOTONIC, &sev, &d->timer) != 0) goto fail;
    struct itimerspec its = {
        .it_value = {.tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000L}};
    if (timer_settime(d->timer, 0, &its, NULL) != 0) {
        timer_delete(d->timer);
        goto fail;
    }
    return d;
fail:
    pthread_mutex_destroy(&d->mu);
    free(d);
    return NULL;
}

int gate_body_deadline_end(gate_body_deadline *d)
{
    if (d == NULL) return 0;
    pthread_mutex_lock(&d->mu);
    d->reading = 0;
    int fired = d->fired;
    pthread_mutex_unlock(&d->mu);
    struct itimerspec zero, old;
    memset(&zero, 0, sizeof zero);
    memset(&old, 0, sizeof old);
    int pending = timer_settime(d->timer, 0, &zero, &old) == 0 &&
                  (old.it_value.tv_sec != 0 || old.it_value.tv_nsec != 0);
    timer_delete(d->timer);
    unref(d, pending ? 2 : 1); /* pending: the callback will never run */
    return fired;
}
