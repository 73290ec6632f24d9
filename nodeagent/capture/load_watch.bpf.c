/* Hints that a process is about to map a TLS library the agent may not have probed yet, so user space
 * scans that one process's maps at once instead of waiting for the periodic /proc rescan.
 * Raw tracepoints (no tracefs, no kprobes needed):
 *   sched_process_exec  a process now runs an executable named like node (OpenSSL linked in);
 *   sys_enter           open/openat/openat2 of a path whose last component is libssl.so[.N...]
 *                       (the dynamic loader, dlopen, or a late `import ssl`).
 * A hint is only a hint: user space decides from /proc/<pid>/maps, and the periodic rescan stays. */

#define HINT_PATH_MAX 256
#define HINT_EXEC 1
#define HINT_OPEN 2

struct lib_hint { u32 pid; u32 kind; };
struct hint_path_buf { char b[HINT_PATH_MAX]; };

BPF_PERCPU_ARRAY(hint_path, struct hint_path_buf, 1);
#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(lib_hints, 4);  /* rare events, each wakes the reader */
#else
BPF_PERF_OUTPUT(lib_hints);
#endif

static __always_inline int send_hint(void *ctx, u32 kind) {
    struct lib_hint h = {.pid = bpf_get_current_pid_tgid() >> 32, .kind = kind};
#ifdef USE_RINGBUF
    lib_hints.ringbuf_output(&h, sizeof(h), 0);
#else
    lib_hints.perf_submit(ctx, &h, sizeof(h));
#endif
    return 0;
}

/* comm is the executable's basename (at most 15 bytes) once exec has begun: node, nodejs or node<digits>. */
int on_exec(struct bpf_raw_tracepoint_args *ctx) {
    char comm[16] = {};
    bpf_get_current_comm(&comm, sizeof(comm));
    if (comm[0] != 'n' || comm[1] != 'o' || comm[2] != 'd' || comm[3] != 'e') return 0;
    if (comm[4] == 0 || (comm[4] == 'j' && comm[5] == 's' && comm[6] == 0)) return send_hint(ctx, HINT_EXEC);
#pragma unroll
    for (int i = 4; i < 15; i++) {
        if (comm[i] == 0) return send_hint(ctx, HINT_EXEC);
        if (comm[i] < '0' || comm[i] > '9') return 0;
    }
    return 0;
}

#if defined(bpf_target_x86)
#define NR_OPEN 2
#define NR_OPENAT 257
#define PATH_ARG(regs, nr) ((void *)(regs) + ((nr) == NR_OPEN ? offsetof(struct pt_regs, di) : offsetof(struct pt_regs, si)))
#elif defined(bpf_target_arm64)
#define NR_OPEN -1                      /* arm64 has no open(2) */
#define NR_OPENAT 56
#define PATH_ARG(regs, nr) ((void *)(regs) + offsetof(struct pt_regs, regs[1]))
#endif
#define NR_OPENAT2 437

/* Does buf[0..n) (n = strlen) end in "libssl.so" plus an optional [0-9.]* version, after a '/' or at the start? */
static __always_inline int is_libssl_path(const char *buf, int n) {
    int i = n - 1;
#pragma unroll
    for (int k = 0; k < 16; k++) {  /* skip the version: ".3", ".1.1", ".1.0.2" */
        if (i < 0) return 0;
        char c = buf[i & (HINT_PATH_MAX - 1)];
        if (c != '.' && (c < '0' || c > '9')) break;
        i--;
    }
    if (i < 8) return 0;
    const char want[9] = {'l', 'i', 'b', 's', 's', 'l', '.', 's', 'o'};
#pragma unroll
    for (int k = 0; k < 9; k++) {
        if (buf[(i - 8 + k) & (HINT_PATH_MAX - 1)] != want[k]) return 0;
    }
    return i == 8 || buf[(i - 9) & (HINT_PATH_MAX - 1)] == '/';
}

int on_sys_enter(struct bpf_raw_tracepoint_args *ctx) {
    long nr = (long)ctx->args[1];
    if (nr != NR_OPENAT && nr != NR_OPEN && nr != NR_OPENAT2) return 0;
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    u64 path = 0;
    if (bpf_probe_read_kernel(&path, sizeof(path), PATH_ARG(regs, nr)) != 0 || !path) return 0;
    int zero = 0;
    struct hint_path_buf *pb = hint_path.lookup(&zero);
    if (!pb) return 0;
    char *buf = pb->b;
    int n = bpf_probe_read_user_str(buf, HINT_PATH_MAX, (const void *)path);
    if (n <= 9) return 0;              /* n counts the NUL; shorter than "libssl.so" */
    if (!is_libssl_path(buf, n - 1)) return 0;
    return send_hint(ctx, HINT_OPEN);
}
