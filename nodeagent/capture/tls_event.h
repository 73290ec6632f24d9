/* The one record the BPF side sends to user space (mirrored by capture/event_layout.py). */
#ifndef CLEARANCE_TLS_EVENT_H
#define CLEARANCE_TLS_EVENT_H

#define TLS_MAX_DATA 16384      /* bytes of one TLS call kept: request headers, long SAS URLs */
#define TLS_READ_MAX_DATA 4096  /* a response's status line and headers */
#define TLS_DIR_WRITE 0
#define TLS_DIR_READ 1

struct tls_event {
    u64 timestamp_ns;  /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
    u64 cgroup_id;     /* cgroup v2 id: the inode of the caller's cgroup directory */
    u64 conn;          /* the SSL* */
    u32 pid;           /* tgid */
    u32 tid;
    u32 length;        /* full length of the TLS call's buffer */
    u32 data_len;      /* bytes of data[] that are valid (<= TLS_MAX_DATA) */
    u32 direction;     /* TLS_DIR_WRITE | TLS_DIR_READ */
    u32 _pad;
    char data[TLS_MAX_DATA];
};

#endif
