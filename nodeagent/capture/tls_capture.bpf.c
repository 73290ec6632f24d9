/* Uprobes on OpenSSL's SSL_write(_ex) and SSL_read(_ex): send to user space only what starts like
 * an HTTP/1.x request or response, plus the continuation writes of a request's headers. */
#include <uapi/linux/ptrace.h>
#include "tls_event.h"

#define HEADER_WINDOW TLS_MAX_DATA  /* bytes of one request's headers followed across writes */
#define STAT_DROPPED 0              /* events the kernel buffer had no room for */
#define STAT_CAPTURED 1             /* events sent */

/* n in [1, max] (max a power of two) in a form the verifier can bound: ((n - 1) & (max - 1)) + 1. */
#define BOUND(n, max) ((((n) - 1) & ((max) - 1)) + 1)

struct conn_key { u64 ssl; u32 tgid; u32 _pad; };
struct read_args { u64 ssl; u64 buf; u64 readbytes; };  /* readbytes: size_t* of SSL_read_ex, else 0 */

BPF_PERCPU_ARRAY(scratch, struct tls_event, 1);
BPF_PERCPU_ARRAY(stats, u64, 2);
BPF_TABLE("lru_hash", struct conn_key, u32, header_window, 65536);  /* bytes still expected of a request's headers */
/* How many header windows are open, node-wide: while none is, a write that does not start a request
 * is dropped without a hash lookup. Entries the LRU evicts are never subtracted, which only costs
 * lookups (the count is a hint, never a reason to miss a continuation). */
BPF_ARRAY(open_windows, s64, 1);
BPF_HASH(pending_reads, u64, struct read_args, 65536);     /* pid_tgid -> args of an SSL_read in flight */
#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(tls_events, RING_PAGES);
BPF_ARRAY(unsignalled_bytes, u64, 1);  /* written to the ring since the last wakeup */
#else
BPF_PERF_OUTPUT(tls_events);
#endif

static __always_inline void count(int which) {
    u64 *v = stats.lookup(&which);
    if (v) *v += 1;
}

static __always_inline int is_request_prefix(u32 w) {
    /* First four bytes, little endian: "GET ", "PUT ", "POST", "HEAD", "DELE", "PATC", "OPTI", "MERG". */
    return w == 0x20544547 || w == 0x20545550 || w == 0x54534f50 || w == 0x44414548 ||
           w == 0x454c4544 || w == 0x43544150 || w == 0x4954504f || w == 0x4752454d;
}

static __always_inline int ends_headers(struct tls_event *e, u32 n) {
    /* Does the captured data end with "\r\n\r\n"? Then no continuation is needed. */
    if (n < 4 || n > TLS_MAX_DATA) return 0;
    u32 i = n - 4;
    asm volatile("" : "+r"(i));
    if (i > TLS_MAX_DATA - 4) return 0;
    return e->data[i] == '\r' && e->data[i + 1] == '\n' && e->data[i + 2] == '\r' && e->data[i + 3] == '\n';
}

static __always_inline s64 *windows(void) {
    int zero = 0;
    return open_windows.lookup(&zero);
}

static __always_inline int any_window_open(void) {
    s64 *w = windows();
    return w && *w > 0;
}

static __always_inline void open_window(struct conn_key *key, u32 left) {
    if (header_window.insert(key, &left) == 0) {
        s64 *w = windows();
        if (w) __sync_fetch_and_add(w, 1);
    } else {
        header_window.update(key, &left);  /* already open (and counted) */
    }
}

static __always_inline void close_window(struct conn_key *key) {
    if (header_window.delete(key) == 0) {
        s64 *w = windows();
        if (w) __sync_fetch_and_add(w, -1);
    }
}

static __always_inline int emit(struct pt_regs *ctx, struct tls_event *e, u32 n) {
    n = BOUND(n, TLS_MAX_DATA);
    e->data_len = n;
    u64 size = sizeof(*e) - TLS_MAX_DATA + n;
#ifdef USE_RINGBUF
    /* No wakeup per event (on a VM the wakeup's interrupt costs the writer more than the copy): user space
     * polls with a timeout and drains; a wakeup is forced each time a quarter of the ring has been written
     * since the last one. Unlocked: a racing CPU can only delay a wakeup by one event. */
    u64 flags = BPF_RB_NO_WAKEUP;
    int zero = 0;
    u64 *unsignalled = unsignalled_bytes.lookup(&zero);
    if (unsignalled) {
        u64 pending = *unsignalled + size;
        if (pending > RING_PAGES * 4096ULL / 4) {
            pending = 0;
            flags = BPF_RB_FORCE_WAKEUP;
        }
        *unsignalled = pending;
    }
    int err = tls_events.ringbuf_output(e, size, flags);
#else
    int err = tls_events.perf_submit(ctx, e, size);
#endif
    count(err ? STAT_DROPPED : STAT_CAPTURED);
    return 0;
}

static __always_inline struct tls_event *fill(u64 ssl, u32 length, u32 direction) {
    int zero = 0;
    struct tls_event *e = scratch.lookup(&zero);
    if (!e) return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->timestamp_ns = bpf_ktime_get_ns();
    e->cgroup_id = bpf_get_current_cgroup_id();
    e->conn = ssl;
    e->pid = id >> 32;
    e->tid = (u32)id;
    e->length = length;
    e->direction = direction;
    e->_pad = 0;
    return e;
}

/* The plaintext of a write is in buf at entry. The hot path is a write that neither starts a request
 * nor continues one: it costs one 8-byte read and, only while some request's headers are incomplete
 * somewhere on the node, one hash lookup. No clock, cgroup, copy or map update. */
static __always_inline int write_entry(struct pt_regs *ctx, u32 len) {
    u64 ssl = PT_REGS_PARM1(ctx);
    const void *buf = (const void *)PT_REGS_PARM2(ctx);
    if (len == 0 || !buf) return 0;
    u64 peek = 0;
    if (bpf_probe_read_user(&peek, BOUND(len < 8 ? len : 8, 8), buf) != 0) return 0;
    int request = len >= 4 && is_request_prefix((u32)peek);
    if (!request && !any_window_open()) return 0;
    struct conn_key key = {.ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32};
    u32 want = TLS_MAX_DATA;
    if (!request) {
        u32 *left = header_window.lookup(&key);
        if (!left) return 0;
        want = *left;
    }
    if (want > len) want = len;
    if (want == 0) return 0;
    struct tls_event *e = fill(ssl, len, TLS_DIR_WRITE);
    if (!e) return 0;
    want = BOUND(want, TLS_MAX_DATA);
    if (bpf_probe_read_user(e->data, want, buf) != 0) return 0;
    int done = ends_headers(e, want);
    if (request) {
        if (!done && want == len && want < HEADER_WINDOW) open_window(&key, HEADER_WINDOW - want);
        else if (any_window_open()) close_window(&key);  /* a request on a connection with a stale window */
    } else {
        u32 *left = header_window.lookup(&key);
        if (left) {
            if (*left <= want || done) close_window(&key);
            else *left -= want;
        }
    }
    return emit(ctx, e, want);
}

/* SSL_write(SSL*, const void *buf, int num): only the low 32 bits of the register are the argument;
 * the upper ones may hold anything, and a negative num is no write at all. */
int on_ssl_write_entry(struct pt_regs *ctx) {
    int num = (int)PT_REGS_PARM3(ctx);
    return num > 0 ? write_entry(ctx, (u32)num) : 0;
}

/* SSL_write_ex(SSL*, const void *buf, size_t num, size_t *written), SSL_write_ex2(... same first three). */
int on_write_entry(struct pt_regs *ctx) {
    u64 num = PT_REGS_PARM3(ctx);
    return write_entry(ctx, num > 0x7fffffff ? 0x7fffffff : (u32)num);
}

static __always_inline int read_entry(struct pt_regs *ctx, u64 readbytes) {
    struct read_args a = {.ssl = PT_REGS_PARM1(ctx), .buf = PT_REGS_PARM2(ctx), .readbytes = readbytes};
    u64 id = bpf_get_current_pid_tgid();
    pending_reads.update(&id, &a);
    return 0;
}

/* SSL_read(SSL*, void *buf, int num): returns int */
int on_read_entry(struct pt_regs *ctx) { return read_entry(ctx, 0); }
/* SSL_read_ex(SSL*, void *buf, size_t num, size_t *readbytes) */
int on_read_ex_entry(struct pt_regs *ctx) { return read_entry(ctx, PT_REGS_PARM4(ctx)); }

int on_read_return(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    struct read_args *a = pending_reads.lookup(&id);
    if (!a) return 0;
    struct read_args args = *a;
    pending_reads.delete(&id);
    int ret = (int)PT_REGS_RC(ctx);  /* keep it 32-bit: negative OpenSSL returns */
    u64 got = 0;
    if (args.readbytes) {
        if (ret != 1) return 0;
        if (bpf_probe_read_user(&got, sizeof(got), (void *)args.readbytes) != 0) return 0;
    } else {
        if (ret <= 0) return 0;
        got = (u64)ret;
    }
    if (got < 8) return 0;
    u64 prefix = 0;
    if (bpf_probe_read_user(&prefix, sizeof(prefix), (void *)args.buf) != 0) return 0;
    /* "HTTP/1." */
    if ((prefix & 0x00ffffffffffffffULL) != 0x002e312f50545448ULL) return 0;
    u32 want = got > TLS_READ_MAX_DATA ? TLS_READ_MAX_DATA : (u32)got;
    struct tls_event *e = fill(args.ssl, got > 0x7fffffff ? 0x7fffffff : (u32)got, TLS_DIR_READ);
    if (!e) return 0;
    want = BOUND(want, TLS_READ_MAX_DATA);
    if (bpf_probe_read_user(e->data, want, (void *)args.buf) != 0) return 0;
    return emit(ctx, e, want);
}
