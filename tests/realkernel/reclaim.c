/*
 * reclaim.c - what the running kernel does when a memory cgroup runs short:
 * reclaim of page cache and anonymous memory, swap-out and swap-in, refaults
 * of evicted file pages, and the memcg OOM killer. One experiment per run,
 * driven phase by phase by tests/realkernel/reclaim.py, which puts the
 * program in a fresh cgroup v1 memory group with a small limit.
 *
 *   reclaim EXPERIMENT ARGS...
 *
 * Sizes are in bytes and may carry a K, M or G suffix (binary units).
 *
 * Protocol (JSON lines on stdout, one word per line on stdin), as io.c:
 *
 *   -> {"ready":"touch"}                before each phase; the driver takes
 *   <- go                               its "before" snapshot and answers
 *   -> {"checkpoint":"touch","pages":512,"minflt":..,"majflt":..,"us":..,
 *       "status":{...}}                 every STEP bytes inside a phase (when
 *   <- go                               asked for): the driver snapshots
 *   -> {"phase":"touch","pages":32768,"minflt":..,"majflt":..,"us":..,
 *       "status":{"VmRSS":kB,...},"resident":{...},"cachestat":{...}}
 *   <- ok                               after the phase's "after" snapshot
 *   -> {"scan":{...}}                   kpageflags summary (settle phases)
 *   -> {"info":{"key":value}}           facts, merged into one dict
 *   -> {"done":0}                       at the end; exits after the next line
 *   -> {"error":"...","errno":N}        failure (exit status 2)
 *
 * A process killed inside a phase (the memcg OOM killer) never prints the
 * phase's line; the driver then has the checkpoints and the progress page:
 * if the environment names a file descriptor in PROGRESS_FD (a memfd of one
 * page), it is mapped MAP_SHARED and the program stores there, after every
 * page it touches, the pages touched so far in the current phase (long [0])
 * and the phase's number (long [1]). The driver reads it after the process
 * died.
 *
 * Anonymous pages are written with one 8-byte non-zero word each, a
 * different one per page and pass: no page is zero-filled (6.18 does not
 * write zero-filled pages to swap: swpout_zero) or same-filled (zram).
 *
 * "status" holds VmRSS, RssAnon, RssFile, VmSwap and VmPTE of
 * /proc/self/status (kB), read after the getrusage window. "resident" is the
 * mincore page count of every file the experiment opened, "cachestat" its
 * [cached, dirty, writeback, evicted, recently_evicted] by cachestat(2)
 * (evicted: shadow entries left by reclaim; recently evicted: those whose
 * refault would count as recent).
 *
 * The program locks its own pages (mlockall(MCL_CURRENT) before the first
 * phase: text, libraries, buffers; "locked_kb" in info): reclaim takes only
 * the experiment's memory, and a settle phase faults nothing back in.
 *
 * A "settle" phase does nothing for 2.2 s but scan /proc/kpageflags and
 * /proc/kpagecgroup for the pages charged to this process's memory cgroup
 * (the per-cpu memcg counters are folded in every 2 s: memory.stat read
 * after it is exact).
 *
 * Experiments:
 *   anon-oom DIR FILE ANON STEP     read(2) DIR/FILE (1 MiB reads), then write
 *                                   ANON bytes of anonymous memory, a
 *                                   checkpoint every STEP bytes
 *   anon-passes ANON PASSES [MODE]  write ANON bytes of anonymous memory,
 *                                   PASSES times over (MODE "write"); or
 *                                   write them once, then read them
 *                                   PASSES - 1 times (MODE "read")
 *   file-passes DIR FILE PASSES BLOCK [WARM]  read(2) DIR/FILE PASSES times
 *                                   in BLOCK-sized reads; with WARM, first
 *                                   read DIR/WARM twice
 *   anon-stream DIR ANON [+PRIME] FILE...  write ANON bytes of anonymous
 *                                   memory, then read(2) each FILE once (1 MiB
 *                                   reads; a name may repeat: the file is
 *                                   read again); with +PRIME, read the file
 *                                   PRIME once and settle before the FILEs
 *   hold ANON ADJ EXTRA             set oom_score_adj ADJ, write ANON bytes;
 *                                   with EXTRA > 0 then write EXTRA more
 *                                   bytes (phase "extra"); else wait for
 *                                   the driver's last line
 *
 * Compiled by tests/realkernel/reclaim.py with "gcc -O1 -Wl,-z,now".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static long PG;
static struct rusage ru0, ru1;
static struct timespec ts0, ts1;
static volatile unsigned long sink;
static char *buf;                      /* the read buffer, pre-faulted */
static long buf_size;
static volatile long *progress;        /* PROGRESS_FD mapped, or a local page */
static long phase_no;

/* ------------------------------------------------------------------ output */

static void die(const char *what)
{
    int e = errno;
    printf("{\"error\":\"%s: %s\",\"errno\":%d}\n", what, strerror(e), e);
    fflush(stdout);
    _exit(2);
}

static void info_long(const char *key, long v)
{
    printf("{\"info\":{\"%s\":%ld}}\n", key, v);
}

/* --------------------------------------------------------------- the files */

#define MAXFILES 8
static struct { char name[64]; char path[4096]; } files[MAXFILES];
static int nfiles;

static const char *add_file(const char *dir, const char *name)
{
    for (int i = 0; i < nfiles; i++)           /* a file named twice is one file */
        if (strcmp(files[i].name, name) == 0)
            return files[i].path;
    if (nfiles == MAXFILES) {
        errno = ENOSPC;
        die("too many files");
    }
    snprintf(files[nfiles].name, sizeof files[nfiles].name, "%s", name);
    snprintf(files[nfiles].path, sizeof files[nfiles].path, "%s/%s", dir, name);
    return files[nfiles++].path;
}

/* Pages of [0, size) of fd resident in the page cache (mincore; no fault). */
static long resident_fd(int fd)
{
    struct stat st;
    long pages, n = 0;
    unsigned char *vec;
    void *p;
    if (fstat(fd, &st))
        die("fstat");
    pages = (st.st_size + PG - 1) / PG;
    if (pages == 0)
        return 0;
    p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap for mincore");
    vec = malloc(pages);
    if (!vec)
        die("malloc");
    if (mincore(p, st.st_size, vec))
        die("mincore");
    for (long i = 0; i < pages; i++)
        n += vec[i] & 1;
    free(vec);
    munmap(p, st.st_size);
    return n;
}

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cachestat_range { uint64_t off, len; };
struct cachestat { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };

static void print_files(void)
{
    printf(",\"resident\":{");
    for (int i = 0; i < nfiles; i++) {
        int fd = open(files[i].path, O_RDONLY);
        printf("%s\"%s\":%ld", i ? "," : "", files[i].name, fd < 0 ? -1 : resident_fd(fd));
        if (fd >= 0)
            close(fd);
    }
    printf("},\"cachestat\":{");
    for (int i = 0; i < nfiles; i++) {
        struct cachestat_range r = { 0, 0 };
        struct cachestat cs;
        int fd = open(files[i].path, O_RDONLY);
        memset(&cs, 0, sizeof cs);
        if (fd < 0 || syscall(__NR_cachestat, fd, &r, &cs, 0))
            die("cachestat");
        close(fd);
        printf("%s\"%s\":[%llu,%llu,%llu,%llu,%llu]", i ? "," : "", files[i].name,
               (unsigned long long)cs.nr_cache, (unsigned long long)cs.nr_dirty,
               (unsigned long long)cs.nr_writeback, (unsigned long long)cs.nr_evicted,
               (unsigned long long)cs.nr_recently_evicted);
    }
    printf("}");
}

/* VmRSS, RssAnon, RssFile, VmSwap, VmPTE (kB) of /proc/self/status. */
static void print_status(void)
{
    static const char *keys[] = { "VmRSS", "RssAnon", "RssFile", "VmSwap", "VmPTE" };
    char line[256];
    int first = 1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        die("/proc/self/status");
    printf(",\"status\":{");
    while (fgets(line, sizeof line, f))
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t n = strlen(keys[k]);
            if (strncmp(line, keys[k], n) == 0 && line[n] == ':') {
                printf("%s\"%s\":%ld", first ? "" : ",", keys[k], atol(line + n + 1));
                first = 0;
            }
        }
    fclose(f);
    printf("}");
}

/* ------------------------------------------------------------------ phases */

static void wait_line(void)
{
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        _exit(3);                       /* the driver went away */
}

static void begin(const char *phase)
{
    printf("{\"ready\":\"%s\"}\n", phase);
    fflush(stdout);
    wait_line();
    phase_no++;
    progress[0] = 0;
    progress[1] = phase_no;
    memset(&ru0, 0, sizeof ru0);
    memset(&ru1, 0, sizeof ru1);
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    getrusage(RUSAGE_SELF, &ru0);
}

static void counts(const char *kind, const char *phase, long pages)
{
    getrusage(RUSAGE_SELF, &ru1);
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    printf("{\"%s\":\"%s\",\"pages\":%ld,\"minflt\":%ld,\"majflt\":%ld,\"us\":%ld",
           kind, phase, pages, ru1.ru_minflt - ru0.ru_minflt, ru1.ru_majflt - ru0.ru_majflt,
           (ts1.tv_sec - ts0.tv_sec) * 1000000L + (ts1.tv_nsec - ts0.tv_nsec) / 1000);
    print_status();
}

/* Inside a phase: the counts so far; wait until the driver snapshotted. */
static void checkpoint(const char *phase, long pages)
{
    counts("checkpoint", phase, pages);
    printf("}\n");
    fflush(stdout);
    wait_line();
}

static void end(const char *phase, long pages)
{
    counts("phase", phase, pages);
    print_files();
    printf("}\n");
    fflush(stdout);
    wait_line();                        /* the driver has its "after" snapshot */
}

/* ----------------------------------------------------- kpageflags summary */

#define KPF_REFERENCED 2
#define KPF_UPTODATE 3
#define KPF_DIRTY 4
#define KPF_LRU 5
#define KPF_ACTIVE 6
#define KPF_SLAB 7
#define KPF_WRITEBACK 8
#define KPF_RECLAIM 9
#define KPF_MMAP 11
#define KPF_ANON 12
#define KPF_SWAPCACHE 13
#define KPF_SWAPBACKED 14
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define KPF_UNEVICTABLE 18
#define KPF_PGTABLE 26
#define BIT(f, b) (((f) >> (b)) & 1)

enum { K_FILE, K_SHMEM, K_ANON, K_OTHER, NKINDS };
static const char *kind_name[NKINDS] = { "file", "shmem", "anon", "other" };
struct kind {
    long pages, lru, active, referenced, dirty, writeback, mapped, swapcache, reclaim,
        unevictable;
    long folios[12];                   /* by order */
};

static unsigned long long memcg_ino(void)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[4096], path[4200];
    struct stat st;
    if (!f)
        die("/proc/self/cgroup");
    while (fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        if (strstr(c1 + 1, "memory")) {
            c2[1 + strcspn(c2 + 1, "\n")] = 0;
            snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s", c2 + 1);
            fclose(f);
            if (stat(path, &st))
                die("stat memory cgroup");
            return st.st_ino;
        }
    }
    fclose(f);
    errno = ENOENT;
    die("no memory cgroup");
    return 0;
}

static int kind_of(uint64_t k)
{
    if (BIT(k, KPF_SLAB) || BIT(k, KPF_PGTABLE))
        return K_OTHER;
    if (BIT(k, KPF_ANON))
        return K_ANON;
    if (BIT(k, KPF_SWAPBACKED))
        return K_SHMEM;
    if (BIT(k, KPF_LRU) || BIT(k, KPF_UPTODATE))
        return K_FILE;
    return K_OTHER;
}

static uint64_t fl[65536], cg[65536];

static void add_folio(struct kind *kinds, int kind, long pages)
{
    int order = 0;
    while ((1L << (order + 1)) <= pages && order < 11)
        order++;
    kinds[kind].folios[order]++;
}

/* Every page charged to this memory cgroup, summarised by kind. */
static void scan_pages(void)
{
    struct kind kinds[NKINDS];
    unsigned long long ino = memcg_ino();
    int ff = open("/proc/kpageflags", O_RDONLY), fc = open("/proc/kpagecgroup", O_RDONLY);
    uint64_t pfn = 0;
    long folio = 0;                    /* pages of the open folio */
    int folio_kind = -1;
    if (ff < 0 || fc < 0)
        die("open /proc/kpageflags");
    memset(kinds, 0, sizeof kinds);
    for (;;) {
        ssize_t a = pread(ff, fl, sizeof fl, pfn * 8), b = pread(fc, cg, sizeof cg, pfn * 8);
        long n = (a < b ? a : b) / 8;
        if (n <= 0)
            break;
        for (long i = 0; i < n; i++) {
            uint64_t k = fl[i];
            int tail = BIT(k, KPF_COMPOUND_TAIL);
            if (folio && !(tail && cg[i] == ino)) {
                add_folio(kinds, folio_kind, folio);
                folio = 0;
            }
            if (cg[i] != ino)
                continue;
            int kd = kind_of(k);
            struct kind *s = &kinds[kd];
            s->pages++;
            s->lru += BIT(k, KPF_LRU);
            s->active += BIT(k, KPF_ACTIVE);
            s->referenced += BIT(k, KPF_REFERENCED);
            s->dirty += BIT(k, KPF_DIRTY);
            s->writeback += BIT(k, KPF_WRITEBACK);
            s->mapped += BIT(k, KPF_MMAP);
            s->swapcache += BIT(k, KPF_SWAPCACHE);
            s->reclaim += BIT(k, KPF_RECLAIM);
            s->unevictable += BIT(k, KPF_UNEVICTABLE);
            if (folio && tail) {
                folio++;
            } else {
                folio = 1;
                folio_kind = kd;
            }
        }
        pfn += n;
    }
    if (folio)
        add_folio(kinds, folio_kind, folio);
    close(ff);
    close(fc);
    printf("{\"scan\":{");
    for (int kd = 0; kd < NKINDS; kd++) {
        struct kind *s = &kinds[kd];
        printf("%s\"%s\":{\"pages\":%ld,\"lru\":%ld,\"active\":%ld,\"referenced\":%ld,"
               "\"dirty\":%ld,\"writeback\":%ld,\"mapped\":%ld,\"swapcache\":%ld,"
               "\"reclaim\":%ld,\"unevictable\":%ld,\"folios\":{",
               kd ? "," : "", kind_name[kd], s->pages, s->lru, s->active, s->referenced,
               s->dirty, s->writeback, s->mapped, s->swapcache, s->reclaim, s->unevictable);
        int first = 1;
        for (int o = 0; o < 12; o++)
            if (s->folios[o]) {
                printf("%s\"%ld\":%ld", first ? "" : ",", 1L << o, s->folios[o]);
                first = 0;
            }
        printf("}}");
    }
    printf("}}\n");
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    double left = t - now();
    if (left > 0) {
        struct timespec d = { (time_t)left, (long)((left - (time_t)left) * 1e9) };
        nanosleep(&d, NULL);
    }
}

/* A phase in which nothing happens for 2.2 s but a scan of this group's pages. */
static void settle(const char *name)
{
    begin(name);
    double t = now();
    scan_pages();
    sleep_until(t + 2.2);
    end(name, 0);
}

/* ----------------------------------------------------------------- helpers */

static long parse_size(const char *s)
{
    char *e;
    double v = strtod(s, &e);
    switch (*e) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    case '\0': break;
    default: errno = EINVAL; die("size");
    }
    return (long)v;
}

static void need(int argc, int n, const char *usage)
{
    if (argc < n) {
        errno = EINVAL;
        die(usage);
    }
}

static void make_buffer(long size)
{
    if (size <= buf_size)
        return;
    buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
               -1, 0);
    if (buf == MAP_FAILED)
        die("mmap buffer");
    memset(buf, 1, size);
    buf_size = size;
}

static long file_size(int fd)
{
    struct stat st;
    if (fstat(fd, &st))
        die("fstat");
    return st.st_size;
}

static int open_file(const char *dir, const char *name)
{
    const char *path = add_file(dir, name);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path);
    return fd;
}

/* read(2) the whole file from offset 0 in block-sized reads: a phase. */
static void phase_read(const char *name, int fd, long block)
{
    long size = file_size(fd);
    unsigned long s = 0;
    make_buffer(block);
    if (lseek(fd, 0, SEEK_SET) != 0)
        die("lseek");
    begin(name);
    for (long done = 0; done < size; done += block) {
        long n = size - done < block ? size - done : block;
        if (read(fd, buf, n) != n)
            die("read");
        s += buf[0];
    }
    end(name, size / PG);
    sink = s;
}

static char *map_anon(long size)
{
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap anon");
    return p;
}

/* Write one non-zero word into each page of [p, p + size): a phase, with a
 * checkpoint every step bytes (0: none). */
static void phase_touch(const char *name, char *p, long size, long step, long salt)
{
    long pages = size / PG, step_pages = step / PG;
    begin(name);
    for (long i = 0; i < pages; i++) {
        *(volatile long *)(p + i * PG) = salt + i + 1;
        progress[0] = i + 1;
        if (step_pages && (i + 1) % step_pages == 0 && i + 1 < pages)
            checkpoint(name, i + 1);
    }
    end(name, pages);
}

/* ------------------------------------------------------------- experiments */

/* anon-oom DIR FILE ANON STEP: page cache first, then too much anon memory. */
static int x_anon_oom(int argc, char **argv)
{
    need(argc, 6, "usage: anon-oom DIR FILE ANON STEP");
    int fd = open_file(argv[2], argv[3]);
    long anon = parse_size(argv[4]), step = parse_size(argv[5]);
    phase_read("read-file", fd, 1 << 20);
    settle("settle-file");
    char *p = map_anon(anon);
    phase_touch("touch-anon", p, anon, step, 0);
    settle("settle-anon");                 /* only if the process survived */
    close(fd);
    return 0;
}

/* anon-passes ANON PASSES [MODE]: write the same anonymous memory PASSES
 * times (MODE "write"), or write it once and read it PASSES - 1 times. */
static int x_anon_passes(int argc, char **argv)
{
    need(argc, 4, "usage: anon-passes ANON PASSES [write|read]");
    long anon = parse_size(argv[2]), passes = atol(argv[3]), pages = anon / PG;
    int reading = argc > 4 && strcmp(argv[4], "read") == 0;
    char *p = map_anon(anon);
    char name[32];
    for (long i = 1; i <= passes; i++) {
        snprintf(name, sizeof name, "pass-%ld", i);
        if (i == 1 || !reading) {
            phase_touch(name, p, anon, 0, i << 40);
        } else {
            unsigned long s = 0;
            begin(name);
            for (long j = 0; j < pages; j++) {
                s += *(volatile long *)(p + j * PG);
                progress[0] = j + 1;
            }
            end(name, pages);
            if (s == 0)
                die("the anonymous memory reads back as zero");
        }
        snprintf(name, sizeof name, "settle-%ld", i);
        settle(name);
    }
    return 0;
}

/* file-passes DIR FILE PASSES BLOCK [WARM]: read a file PASSES times; with
 * WARM, first read(2) the file WARM twice (it becomes active). */
static int x_file_passes(int argc, char **argv)
{
    need(argc, 6, "usage: file-passes DIR FILE PASSES BLOCK [WARM]");
    long passes = atol(argv[4]), block = parse_size(argv[5]);
    int warm = argc > 6 ? open_file(argv[2], argv[6]) : -1;
    int fd = open_file(argv[2], argv[3]);
    char name[32];
    settle("settle-cold");
    if (warm >= 0) {
        phase_read("warm-1", warm, block);
        phase_read("warm-2", warm, block);
        settle("settle-warm");
    }
    for (long i = 1; i <= passes; i++) {
        snprintf(name, sizeof name, "pass-%ld", i);
        phase_read(name, fd, block);
        snprintf(name, sizeof name, "settle-%ld", i);
        settle(name);
    }
    close(fd);
    if (warm >= 0)
        close(warm);
    return 0;
}

/* anon-stream DIR ANON [+PRIME] FILE...: anonymous memory, then streaming
 * reads; with +PRIME, read(2) the file PRIME once first and settle, so that
 * the group's flushed LRU sizes show inactive file pages when reclaim
 * begins. */
static int x_anon_stream(int argc, char **argv)
{
    need(argc, 5, "usage: anon-stream DIR ANON [+PRIME] FILE...");
    long anon = parse_size(argv[3]);
    int fds[16], n = 0, prime = -1, first = 4;
    char name[32];
    if (argv[4][0] == '+') {
        prime = open_file(argv[2], argv[4] + 1);
        first = 5;
    }
    for (int i = first; i < argc && n < 16; i++)
        fds[n++] = open_file(argv[2], argv[i]);
    char *p = map_anon(anon);
    phase_touch("touch-anon", p, anon, 0, 0);
    settle("settle-anon");
    if (prime >= 0) {
        phase_read("prime", prime, 1 << 20);
        settle("settle-prime");
        close(prime);
    }
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "stream-%d", i + 1);
        phase_read(name, fds[i], 1 << 20);
        snprintf(name, sizeof name, "settle-%d", i + 1);
        settle(name);
        close(fds[i]);
    }
    return 0;
}

/* Set /proc/self/oom_score_adj; report the value read back and whether -1
 * is accepted (below the inherited oom_score_adj_min of 0: that needs
 * CAP_SYS_RESOURCE). */
static void set_oom_score_adj(long adj)
{
    char text[32];
    int fd = open("/proc/self/oom_score_adj", O_RDWR), n, lowered;
    if (fd < 0)
        die("open /proc/self/oom_score_adj");
    lowered = write(fd, "-1", 2) == 2;
    printf("{\"info\":{\"negative_adj_allowed\":%s,\"negative_adj_errno\":%d}}\n",
           lowered ? "true" : "false", lowered ? 0 : errno);
    n = snprintf(text, sizeof text, "%ld", adj);
    lseek(fd, 0, SEEK_SET);
    if (write(fd, text, n) != n)
        die("write oom_score_adj");
    close(fd);
    FILE *f = fopen("/proc/self/oom_score_adj", "r");
    long got = 0;
    if (!f || fscanf(f, "%ld", &got) != 1)
        die("read oom_score_adj");
    fclose(f);
    info_long("oom_score_adj", got);
}

/* hold ANON ADJ EXTRA: a process of the OOM-victim experiment. */
static int x_hold(int argc, char **argv)
{
    need(argc, 5, "usage: hold ANON ADJ EXTRA");
    long anon = parse_size(argv[2]), adj = atol(argv[3]), extra = parse_size(argv[4]);
    set_oom_score_adj(adj);
    info_long("pid", getpid());
    char *p = map_anon(anon > 0 ? anon : PG);
    phase_touch("touch", p, anon, 0, 0);
    if (extra > 0) {
        char *q = map_anon(extra);
        phase_touch("extra", q, extra, 0, 1L << 40);
    }
    return 0;
}

struct experiment {
    const char *name;
    int (*fn)(int, char **);
};

static const struct experiment experiments[] = {
    { "anon-oom", x_anon_oom },
    { "anon-passes", x_anon_passes },
    { "file-passes", x_file_passes },
    { "anon-stream", x_anon_stream },
    { "hold", x_hold },
};

int main(int argc, char **argv)
{
    static long local_progress[2];
    static char out_buf[1 << 16], in_buf[4096];
    PG = sysconf(_SC_PAGESIZE);
    setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    setvbuf(stdin, in_buf, _IOLBF, sizeof in_buf);
    if (argc < 2) {
        fprintf(stderr, "usage: reclaim EXPERIMENT ARGS...\n");
        return 1;
    }
    progress = local_progress;
    if (getenv("PROGRESS_FD")) {
        void *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED,
                       atoi(getenv("PROGRESS_FD")), 0);
        if (m == MAP_FAILED)
            die("mmap the progress page (PROGRESS_FD)");
        progress = m;
    }
    make_buffer(1 << 20);
    memset(fl, 1, sizeof fl);          /* the scan buffers: no faults later */
    memset(cg, 1, sizeof cg);
    /* Lock what the program itself uses (text, libraries, the buffers, the
     * stdio buffers, the stack so far): reclaim takes only the experiment's
     * memory, and a settle phase's scan faults nothing back in. */
    if (mlockall(MCL_CURRENT))
        die("mlockall");
    {
        long locked = 0;
        char line[256];
        FILE *f = fopen("/proc/self/status", "r");
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "VmLck:", 6) == 0)
                locked = atol(line + 6);
        if (f)
            fclose(f);
        info_long("locked_kb", locked);
    }
    for (size_t i = 0; i < sizeof experiments / sizeof experiments[0]; i++)
        if (strcmp(argv[1], experiments[i].name) == 0) {
            int rc = experiments[i].fn(argc, argv);
            /* Exit only when the driver has its last snapshot. */
            printf("{\"done\":%d}\n", rc);
            fflush(stdout);
            wait_line();
            return rc;
        }
    errno = EINVAL;
    die("unknown experiment");
    return 1;
}
