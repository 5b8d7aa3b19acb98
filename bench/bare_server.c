/* bare_server.c — the benchmark's baseline: civetweb with the same thread count answering
 * every request with a fixed JSON decision, so bench/gate.sh can report dealgate's rate as
 * a ratio of what the HTTP layer alone does on this machine. Usage: bare_server PORT THREADS */
#include <civetweb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char body[] =
    "{\"decision_id\":\"dg_0000000000000000000000000\",\"allowed\":true,\"outcome\":\"allow\","
    "\"mode\":\"enforce\",\"message\":\"\",\"reasons\":[],\"warnings\":[],\"registrations\":[],"
    "\"revert_to\":null}";

static int handle(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    char buf[4096];
    while (mg_read(conn, buf, sizeof buf) > 0) {
    }
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
              sizeof body - 1);
    mg_write(conn, body, sizeof body - 1);
    return 200;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bare_server PORT THREADS\n");
        return 2;
    }
    char ports[64];
    snprintf(ports, sizeof ports, "127.0.0.1:%s", argv[1]);
    const char *opts[] = {"listening_ports",
                          ports,
                          "num_threads",
                          argv[2],
                          "enable_keep_alive",
                          "yes",
                          "keep_alive_timeout_ms",
                          "5000",
                          "tcp_nodelay",
                          "1",
                          NULL};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    mg_init_library(0);
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    struct mg_context *ctx = mg_start(&cb, NULL, opts);
    if (!ctx) return 1;
    mg_set_request_handler(ctx, "/", handle, NULL);
    int sig;
    sigwait(&set, &sig);
    mg_stop(ctx);
    return 0;
}
