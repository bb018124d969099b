/*
 * Load generator and destination servers for benchmarks/run.py.
 *
 * Built by run.py with the machine's C compiler into a temporary directory;
 * never committed as a binary.  Everything here talks to 127.0.0.1 only,
 * and every loop is bounded both in count and in time.
 *
 *   loadgen dest MAXSECONDS
 *       Echo, source and hold servers on ephemeral 127.0.0.1 ports; prints
 *       "ECHO SOURCE HOLD" on one line, then serves until its standard
 *       input closes or MAXSECONDS pass.
 *         echo:   sends back whatever it reads; closes after the peer's FIN.
 *         source: sends bytes as fast as the peer takes them, until it goes.
 *         hold:   accepts, reads and discards, closes after the peer's FIN.
 *
 *   loadgen stream   VIA DSTPORT BYTES MAXSECONDS
 *   loadgen streams  VIA DSTPORT COUNT BYTES MAXSECONDS
 *   loadgen sessions VIA DSTPORT COUNT CONCURRENCY MAXSECONDS
 *   loadgen hold     VIA DSTPORT COUNT CONCURRENCY MAXSECONDS
 *   loadgen slow     VIA DSTPORT BYTES_PER_SECOND SECONDS
 *       streams opens COUNT streams (handshakes done one after the other)
 *       and reads BYTES in all, spread over them, from one epoll loop.
 *       VIA is "direct", "socks4:PORT" or "socks5:PORT" (a SOCKS server on
 *       127.0.0.1).  Each prints one JSON object with its figures;
 *       sessions prints a second one with the sessions completed in each
 *       0.1 s window.  hold prints a first object once its sessions are
 *       open, then keeps them open until its standard input gives a line
 *       or closes (or MAXSECONDS pass), closes them, and prints a second.
 *
 * Client sockets are bound to 127.0.0.1 .. 127.0.0.N (N = SOURCES, below)
 * in turn, with IP_BIND_ADDRESS_NO_PORT, so that tens of thousands of short
 * sessions a second do not run out of ephemeral ports, and so that no one
 * client address holds more than a few hundred of the idle sessions.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define SOURCES 32
#define PAYLOAD 100
#define MAXEVENTS 512

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ------------------------------------------------------------------ */
/* Where to connect.                                                   */

enum { VIA_DIRECT, VIA_SOCKS4, VIA_SOCKS5 };

static int via_kind, via_port, dst_port;
static unsigned source_turn;

static void parse_via(const char *via)
{
    if (strcmp(via, "direct") == 0) {
        via_kind = VIA_DIRECT;
    } else if (strncmp(via, "socks4:", 7) == 0) {
        via_kind = VIA_SOCKS4;
        via_port = atoi(via + 7);
    } else if (strncmp(via, "socks5:", 7) == 0) {
        via_kind = VIA_SOCKS5;
        via_port = atoi(via + 7);
    } else {
        fprintf(stderr, "loadgen: bad VIA %s\n", via);
        exit(2);
    }
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A socket connecting (non-blocking unless told) to the proxy or the
 * destination, bound to the next of the loopback source addresses. */
static int open_socket(int nonblocking, int *inprogress)
{
    int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in src = loopback(0);
    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (source_turn++ % SOURCES));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in to = loopback(via_kind == VIA_DIRECT ? dst_port : via_port);
    *inprogress = 0;
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        *inprogress = 1;
    }
    return fd;
}

static int socks5_request(unsigned char *out)
{
    out[0] = 5; out[1] = 1; out[2] = 0; out[3] = 1;
    out[4] = 127; out[5] = 0; out[6] = 0; out[7] = 1;
    out[8] = dst_port >> 8; out[9] = dst_port & 255;
    return 10;
}

static int socks4_request(unsigned char *out)
{
    out[0] = 4; out[1] = 1;
    out[2] = dst_port >> 8; out[3] = dst_port & 255;
    out[4] = 127; out[5] = 0; out[6] = 0; out[7] = 1;
    out[8] = 0; /* empty user id */
    return 9;
}

/* Length of a SOCKS5 reply whose first 5 bytes are in r, or -1. */
static int socks5_reply_length(const unsigned char *r)
{
    switch (r[3]) {
    case 1: return 4 + 4 + 2;
    case 4: return 4 + 16 + 2;
    case 3: return 4 + 1 + r[4] + 2;
    default: return -1;
    }
}

/* ------------------------------------------------------------------ */
/* Blocking helpers for the one-connection modes.                      */

static int read_exact(int fd, unsigned char *buf, int n)
{
    int got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += r;
    }
    return 0;
}

static int write_all(int fd, const unsigned char *buf, int n)
{
    int done = 0;
    while (done < n) {
        ssize_t w = send(fd, buf + done, n - done, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        done += w;
    }
    return 0;
}

/* A blocking connection through VIA to the destination, handshake done. */
static int open_blocking(void)
{
    int inprogress;
    int fd = open_socket(0, &inprogress);
    if (fd < 0)
        die("connect");
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    unsigned char buf[300];
    if (via_kind == VIA_SOCKS5) {
        unsigned char greet[3] = {5, 1, 0};
        if (write_all(fd, greet, 3) || read_exact(fd, buf, 2) || buf[0] != 5 || buf[1] != 0)
            die("SOCKS5 greeting");
        int n = socks5_request(buf);
        if (write_all(fd, buf, n) || read_exact(fd, buf, 5) || buf[1] != 0)
            die("SOCKS5 request");
        int len = socks5_reply_length(buf);
        if (len < 0 || read_exact(fd, buf + 5, len - 5))
            die("SOCKS5 reply");
    } else if (via_kind == VIA_SOCKS4) {
        int n = socks4_request(buf);
        if (write_all(fd, buf, n) || read_exact(fd, buf, 8) || buf[1] != 90)
            die("SOCKS4 request");
    }
    tv.tv_sec = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* loadgen stream: read BYTES as fast as possible. */
static int run_stream(long long bytes, double maxseconds)
{
    int fd = open_blocking();
    size_t size = 1 << 20;
    unsigned char *buf = malloc(size);
    long long got = 0;
    double start = now(), deadline = start + maxseconds, last = start;
    while (got < bytes && last < deadline) {
        long long want = bytes - got < (long long)size ? bytes - got : (long long)size;
        ssize_t r = recv(fd, buf, want, 0);
        last = now();
        if (r > 0)
            got += r;
        else if (r == 0 || (errno != EAGAIN && errno != EINTR))
            break;
    }
    close(fd);
    double seconds = last - start;
    printf("{\"bytes\": %lld, \"seconds\": %.6f, \"mb_per_s\": %.3f, \"complete\": %s}\n",
           got, seconds, got / seconds / 1e6, got >= bytes ? "true" : "false");
    return 0;
}

/* loadgen streams: COUNT parallel streams, BYTES in all, one epoll loop. */
static int run_streams(int count, long long bytes, double maxseconds)
{
    if (count < 1 || count > 1024) {
        fprintf(stderr, "loadgen: 1 to 1024 streams\n");
        return 2;
    }
    int pe = epoll_create1(0);
    if (pe < 0)
        die("epoll_create1");
    int *fds = calloc(count, sizeof(int));
    long long each = bytes / count, got = 0;
    long long *left = calloc(count, sizeof(long long));
    for (int i = 0; i < count; i++) {
        fds[i] = open_blocking();
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        left[i] = each;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        if (epoll_ctl(pe, EPOLL_CTL_ADD, fds[i], &ev) < 0)
            die("epoll_ctl");
    }
    size_t size = 1 << 18;
    unsigned char *buf = malloc(size);
    int open = count;
    double start = now(), deadline = start + maxseconds, last = start;
    struct epoll_event events[MAXEVENTS];
    while (open > 0 && last < deadline) {
        int n = epoll_wait(pe, events, MAXEVENTS, 100);
        for (int k = 0; k < n; k++) {
            int i = events[k].data.u32;
            if (fds[i] < 0)
                continue;
            long long want = left[i] < (long long)size ? left[i] : (long long)size;
            ssize_t r = recv(fds[i], buf, want, 0);
            if (r > 0) {
                got += r;
                left[i] -= r;
            }
            if (left[i] <= 0 || r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                close(fds[i]);
                fds[i] = -1;
                open--;
            }
        }
        last = now();
    }
    for (int i = 0; i < count; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    double seconds = last - start;
    printf("{\"streams\": %d, \"bytes\": %lld, \"seconds\": %.6f, \"mb_per_s\": %.3f, \"complete\": %s}\n",
           count, got, seconds, got / seconds / 1e6, got >= each * count ? "true" : "false");
    return 0;
}

/* loadgen slow: read at most BYTES_PER_SECOND, for SECONDS. */
static int run_slow(long long rate, double seconds)
{
    int fd = open_blocking();
    size_t size = 1 << 16;
    unsigned char *buf = malloc(size);
    long long got = 0;
    double start = now(), end = start + seconds;
    int closed = 0;
    for (double t = start; t < end && !closed; t = now()) {
        long long allowed = (long long)(rate * (t - start)) - got;
        while (allowed > 0) {
            ssize_t r = recv(fd, buf, allowed < (long long)size ? allowed : (long long)size, MSG_DONTWAIT);
            if (r > 0) {
                got += r;
                allowed -= r;
            } else {
                if (r == 0 || (errno != EAGAIN && errno != EINTR))
                    closed = 1;
                break;
            }
        }
        struct timespec tick = {0, 10 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    close(fd);
    printf("{\"bytes\": %lld, \"seconds\": %.3f, \"closed_early\": %s}\n", got, now() - start,
           closed ? "true" : "false");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Many sessions at once: an epoll state machine per connection.       */

enum {
    PH_CONNECT,
    PH_GREET_SEND,
    PH_GREET_READ,
    PH_REQ_SEND,
    PH_REPLY_READ,
    PH_DATA_SEND,
    PH_DATA_READ,
    PH_HELD,
};

struct session {
    int fd;
    int phase;
    uint32_t events;
    unsigned char out[PAYLOAD];
    int outlen, outoff;
    unsigned char in[PAYLOAD + 300];
    int inlen, inneed;
    double started;
    long long index;
};

static int ep;
static int hold_mode;
static long long started, completed, failed, held, dropped;
static long long inflight; /* sessions not yet completed or held */
static double *latencies;
#define WINDOW 0.1 /* seconds: completions are also counted per window */
#define MAXWINDOWS 6000
static long long windows[MAXWINDOWS];
static double run_start;
static long long latency_cap;
static unsigned char payload[PAYLOAD];

static void want(struct session *s, uint32_t events)
{
    if (s->events != events) {
        struct epoll_event ev = {.events = events, .data.ptr = s};
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
        s->events = events;
    }
}

static struct session **all_sessions; /* hold mode: every session started */
static char first_error[160];        /* what went wrong first, for the report */

static const char *phase_names[] = {"connect", "greeting", "method selection", "request",
                                    "reply", "data", "echo", "idle"};

static void note_error(const struct session *s, const char *what)
{
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "%s: %s",
                 s ? phase_names[s->phase] : "connect", what);
}

static void finish(struct session *s, int ok)
{
    close(s->fd);
    if (all_sessions)
        all_sessions[s->index] = NULL;
    if (ok) {
        double t = now();
        if (completed < latency_cap)
            latencies[completed] = t - s->started;
        long long w = (long long)((t - run_start) / WINDOW);
        if (w < MAXWINDOWS)
            windows[w]++;
        completed++;
    } else {
        failed++;
    }
    inflight--;
    free(s);
}

static void enter(struct session *s, int phase);

/* Send what is left of s->out; 1 when all is sent, 0 to wait, -1 on error. */
static int flush_out(struct session *s)
{
    while (s->outoff < s->outlen) {
        ssize_t w = send(s->fd, s->out + s->outoff, s->outlen - s->outoff, MSG_NOSIGNAL);
        if (w > 0)
            s->outoff += w;
        else if (w < 0 && errno == EAGAIN)
            return 0;
        else if (w < 0 && errno == EINTR)
            continue;
        else
            return -1;
    }
    return 1;
}

static void start_send(struct session *s, int phase, const unsigned char *data, int len)
{
    s->phase = phase;
    memcpy(s->out, data, len);
    s->outlen = len;
    s->outoff = 0;
    int r = flush_out(s);
    if (r < 0) {
        note_error(s, strerror(errno));
        finish(s, 0);
    } else if (r == 0) {
        want(s, EPOLLOUT);
    } else {
        enter(s, phase + 1);
    }
}

static void start_read(struct session *s, int phase, int need)
{
    s->phase = phase;
    s->inlen = 0;
    s->inneed = need;
    want(s, EPOLLIN);
}

static void enter(struct session *s, int phase)
{
    unsigned char buf[16];
    switch (phase) {
    case PH_GREET_SEND:
        if (via_kind == VIA_SOCKS5) {
            buf[0] = 5; buf[1] = 1; buf[2] = 0;
            start_send(s, PH_GREET_SEND, buf, 3);
        } else if (via_kind == VIA_SOCKS4) {
            start_send(s, PH_REQ_SEND, buf, socks4_request(buf));
        } else {
            enter(s, PH_DATA_SEND);
        }
        return;
    case PH_GREET_READ:
        start_read(s, PH_GREET_READ, 2);
        return;
    case PH_REQ_SEND:
        start_send(s, PH_REQ_SEND, buf, socks5_request(buf));
        return;
    case PH_REPLY_READ:
        start_read(s, PH_REPLY_READ, via_kind == VIA_SOCKS5 ? 5 : 8);
        return;
    case PH_DATA_SEND:
        if (hold_mode) {
            s->phase = PH_HELD;
            held++;
            inflight--;
            want(s, EPOLLIN); /* only to see the gateway drop it */
            return;
        }
        start_send(s, PH_DATA_SEND, payload, PAYLOAD);
        return;
    case PH_DATA_READ:
        start_read(s, PH_DATA_READ, PAYLOAD);
        return;
    }
}

/* A read phase has its bytes: check them and go on.  Returns 1 when the
 * same read goes on (the rest of a SOCKS5 reply), else 0: then s has moved
 * on to another phase, or is freed. */
static int got_all(struct session *s)
{
    int ok = 0;
    switch (s->phase) {
    case PH_GREET_READ:
        if (s->in[0] == 5 && s->in[1] == 0) {
            enter(s, PH_REQ_SEND);
            return 0;
        }
        break;
    case PH_REPLY_READ:
        if (via_kind == VIA_SOCKS5) {
            int len = socks5_reply_length(s->in);
            if (s->in[0] != 5 || s->in[1] != 0 || len < 0)
                break;
            if (s->inneed < len) {
                s->inneed = len;
                return 1;
            }
        } else if (s->in[1] != 90) {
            break;
        }
        enter(s, PH_DATA_SEND);
        return 0;
    case PH_DATA_READ:
        ok = memcmp(s->in, payload, PAYLOAD) == 0;
        break;
    }
    if (!ok)
        note_error(s, "unexpected bytes");
    finish(s, ok);
    return 0;
}

static void on_event(struct session *s)
{
    if (s->phase == PH_HELD) {
        /* The gateway closed (or sent something on) an idle session. */
        unsigned char b[64];
        ssize_t r = recv(s->fd, b, sizeof b, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
            epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
            close(s->fd);
            s->fd = -1;
            s->phase = -1;
            held--;
            dropped++;
        }
        return;
    }
    if (s->phase == PH_CONNECT) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            note_error(s, strerror(err));
            finish(s, 0);
        }
        else
            enter(s, PH_GREET_SEND);
        return;
    }
    if (s->phase == PH_GREET_SEND || s->phase == PH_REQ_SEND || s->phase == PH_DATA_SEND) {
        int r = flush_out(s);
        if (r < 0) {
            note_error(s, strerror(errno));
            finish(s, 0);
        } else if (r > 0) {
            enter(s, s->phase + 1);
        }
        return;
    }
    /* A read phase (reads may need several rounds for the SOCKS5 reply). */
    while (s->inlen < s->inneed) {
        ssize_t r = recv(s->fd, s->in + s->inlen, s->inneed - s->inlen, 0);
        if (r > 0) {
            s->inlen += r;
            if (s->inlen == s->inneed && !got_all(s))
                return;
        } else if (r < 0 && errno == EAGAIN) {
            return;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            note_error(s, r == 0 ? "closed by the server" : strerror(errno));
            finish(s, 0);
            return;
        }
    }
}

static int start_session(void)
{
    struct session *s = calloc(1, sizeof *s);
    int inprogress;
    s->fd = open_socket(1, &inprogress);
    started++;
    inflight++;
    s->started = now();
    if (s->fd < 0) {
        note_error(NULL, strerror(errno));
        failed++;
        inflight--;
        free(s);
        return -1;
    }
    s->index = started - 1;
    if (all_sessions)
        all_sessions[s->index] = s;
    s->events = inprogress ? EPOLLOUT : 0;
    struct epoll_event ev = {.events = s->events, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
    if (inprogress)
        s->phase = PH_CONNECT;
    else
        enter(s, PH_GREET_SEND);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *sorted, long long n, double p)
{
    if (n == 0)
        return 0;
    long long i = (long long)(p * (n - 1) + 0.5);
    return sorted[i];
}

/* Run the event loop until COUNT sessions have ended (or are held), or
 * the deadline passes, or (in hold mode) standard input has something. */
static void loop(long long count, int concurrency, double deadline, int watch_stdin)
{
    struct epoll_event events[MAXEVENTS];
    while (now() < deadline) {
        if (!watch_stdin) {
            if (completed + failed + held >= count)
                break;
            if (failed > 1000 && completed + held == 0)
                return; /* nothing works: give up */
            while (inflight < concurrency && started < count)
                start_session();
        }
        int n = epoll_wait(ep, events, MAXEVENTS, 100);
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL)
                return; /* standard input: time to close */
            on_event(events[i].data.ptr);
        }
    }
}

/* loadgen sessions / hold. */
static int run_sessions(long long count, int concurrency, double maxseconds, int hold)
{
    hold_mode = hold;
    ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    for (int i = 0; i < PAYLOAD; i++)
        payload[i] = 'a' + i % 26;
    latency_cap = count < 20000000 ? count : 20000000;
    latencies = malloc(sizeof(double) * (latency_cap ? latency_cap : 1));
    if (hold)
        all_sessions = calloc(count, sizeof *all_sessions);
    double start = now(), deadline = start + maxseconds;
    run_start = start;
    loop(count, concurrency, deadline, 0);
    double elapsed = now() - start;
    if (!hold) {
        qsort(latencies, completed < latency_cap ? completed : latency_cap, sizeof(double), cmp_double);
        long long n = completed < latency_cap ? completed : latency_cap;
        printf("{\"completed\": %lld, \"failed\": %lld, \"unfinished\": %lld, \"seconds\": %.6f, "
               "\"per_s\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
               "\"first_error\": \"%s\"}\n",
               completed, failed, inflight, elapsed, completed / elapsed,
               percentile(latencies, n, 0.5) * 1e3, percentile(latencies, n, 0.99) * 1e3,
               n ? latencies[n - 1] * 1e3 : 0.0, first_error);
        /* The completions in each whole window, on a second line. */
        long long whole = (long long)(elapsed / WINDOW);
        printf("{\"window_s\": %g, \"windows\": [", WINDOW);
        for (long long i = 0; i < whole && i < MAXWINDOWS; i++)
            printf(i ? ", %lld" : "%lld", windows[i]);
        printf("]}\n");
        return 0;
    }
    printf("{\"opened\": %lld, \"failed\": %lld, \"unfinished\": %lld, \"seconds\": %.3f, "
           "\"first_error\": \"%s\"}\n", held, failed, inflight, elapsed, first_error);
    fflush(stdout);
    /* Hold them until told (a line or EOF on stdin) or out of time. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    loop(count, concurrency, deadline, 1);
    long long closed = 0;
    for (long long i = 0; i < started; i++) {
        struct session *s = all_sessions[i];
        if (s && s->phase == PH_HELD) {
            close(s->fd);
            closed++;
        }
    }
    printf("{\"closed\": %lld, \"dropped\": %lld}\n", closed, dropped);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Destination servers.                                                */

enum { L_ECHO, L_SOURCE, L_HOLD, C_ECHO, C_SOURCE, C_HOLD, STDIN_WATCH };

struct peer {
    int fd;
    int kind;
    int pending, pendoff; /* echo bytes not yet sent back */
    unsigned char buf[16384];
};

static unsigned char *source_data;
#define SOURCE_CHUNK (256 * 1024)

static int listen_on(int kind, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = loopback(0);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0)
        die("listen");
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    struct peer *p = calloc(1, sizeof *p);
    p->fd = fd;
    p->kind = kind;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return fd;
}

static void drop(struct peer *p)
{
    close(p->fd); /* also removes it from the epoll set */
    free(p);
}

static void accept_all(struct peer *l)
{
    for (int i = 0; i < 256; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct peer *p = malloc(sizeof *p - sizeof p->buf + (l->kind == L_ECHO ? sizeof p->buf : 0));
        p->fd = fd;
        p->kind = l->kind + (C_ECHO - L_ECHO);
        p->pending = p->pendoff = 0;
        struct epoll_event ev = {.events = p->kind == C_SOURCE ? EPOLLOUT : EPOLLIN, .data.ptr = p};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

static void echo_event(struct peer *p)
{
    for (;;) {
        if (p->pending) {
            ssize_t w = send(p->fd, p->buf + p->pendoff, p->pending, MSG_NOSIGNAL);
            if (w < 0 && errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = p};
                epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
                return;
            }
            if (w <= 0) {
                drop(p);
                return;
            }
            p->pending -= w;
            p->pendoff += w;
            if (p->pending)
                continue;
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
            epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
        }
        ssize_t r = recv(p->fd, p->buf, sizeof p->buf, 0);
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            drop(p);
            return;
        }
        p->pending = r;
        p->pendoff = 0;
    }
}

static void source_event(struct peer *p)
{
    for (int i = 0; i < 16; i++) {
        ssize_t w = send(p->fd, source_data, SOURCE_CHUNK, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN)
            return;
        if (w <= 0) {
            drop(p);
            return;
        }
    }
}

static void hold_event(struct peer *p)
{
    unsigned char b[4096];
    for (;;) {
        ssize_t r = recv(p->fd, b, sizeof b, 0);
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            drop(p);
            return;
        }
    }
}

static int run_dest(double maxseconds)
{
    ep = epoll_create1(0);
    source_data = malloc(SOURCE_CHUNK);
    memset(source_data, 'x', SOURCE_CHUNK);
    int echo, source, hold;
    listen_on(L_ECHO, &echo);
    listen_on(L_SOURCE, &source);
    listen_on(L_HOLD, &hold);
    struct peer watch = {.fd = 0, .kind = STDIN_WATCH};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &watch};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    printf("%d %d %d\n", echo, source, hold);
    fflush(stdout);
    double deadline = now() + maxseconds;
    struct epoll_event events[MAXEVENTS];
    while (now() < deadline) {
        int n = epoll_wait(ep, events, MAXEVENTS, 200);
        for (int i = 0; i < n; i++) {
            struct peer *p = events[i].data.ptr;
            switch (p->kind) {
            case STDIN_WATCH: return 0;
            case L_ECHO: case L_SOURCE: case L_HOLD: accept_all(p); break;
            case C_ECHO: echo_event(p); break;
            case C_SOURCE: source_event(p); break;
            case C_HOLD: hold_event(p); break;
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "dest") == 0)
        return run_dest(atof(argv[2]));
    if (argc >= 4) {
        parse_via(argv[2]);
        dst_port = atoi(argv[3]);
    }
    if (argc == 6 && strcmp(argv[1], "stream") == 0)
        return run_stream(atoll(argv[4]), atof(argv[5]));
    if (argc == 7 && strcmp(argv[1], "streams") == 0)
        return run_streams(atoi(argv[4]), atoll(argv[5]), atof(argv[6]));
    if (argc == 6 && strcmp(argv[1], "slow") == 0)
        return run_slow(atoll(argv[4]), atof(argv[5]));
    if (argc == 7 && strcmp(argv[1], "sessions") == 0)
        return run_sessions(atoll(argv[4]), atoi(argv[5]), atof(argv[6]), 0);
    if (argc == 7 && strcmp(argv[1], "hold") == 0)
        return run_sessions(atoll(argv[4]), atoi(argv[5]), atof(argv[6]), 1);
    fprintf(stderr, "usage: see the comment at the top of loadgen.c\n");
    return 2;
}
