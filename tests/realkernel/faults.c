/*
 * faults.c - measure the page faults the running kernel takes for one
 * experiment and print them as JSON lines on stdout.
 *
 *   faults EXPERIMENT ARGS...
 *
 * Every measured phase prints one line
 *   {"phase":"touch","pages":16384,"minflt":16384,"majflt":0,"us":1234}
 * with the getrusage() minor/major fault deltas taken immediately around the
 * phase's loop (or system call). Other facts are printed as
 *   {"info":{"key":value}}        merged by the harness into one dict
 *   {"probe":{"name":...}}        overcommit probes
 * and a failure as {"error":"...","errno":N} with exit status 2.
 *
 * Nothing is allocated, printed or otherwise touched inside a measured window
 * except the memory the experiment is about: the rusage buffers are written
 * before the first snapshot (after fork() they are copy-on-write in both
 * processes and the kernel's copy_to_user() would otherwise fault inside the
 * window), loops keep their state in registers, and output happens afterwards.
 *
 * Sizes are in bytes and may carry a K, M or G suffix (binary units).
 * Compiled by tests/realkernel/harness.py with "gcc -O1 -Wl,-z,now".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_FREE
#define MADV_FREE 8
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif

#define HPAGE (2UL << 20)

static long PG;                       /* page size */
static struct rusage ru0, ru1;        /* snapshot buffers (pre-faulted) */
static struct timespec ts0, ts1;
static volatile unsigned long sink;   /* keeps read loops alive */

/* ------------------------------------------------------------------ output */

static void die(const char *what)
{
    int e = errno;
    printf("{\"error\":\"%s: %s\",\"errno\":%d}\n", what, strerror(e), e);
    fflush(stdout);
    _exit(2);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void info_long(const char *key, long v)
{
    printf("{\"info\":{\"%s\":%ld}}\n", key, v);
}

static void info_str(const char *key, const char *v)
{
    printf("{\"info\":{\"%s\":", key);
    json_str(v);
    printf("}}\n");
}

/* --------------------------------------------------------------- measuring */

/* Write the snapshot buffers so that the snapshots themselves cannot fault. */
static void prepare(void)
{
    memset(&ru0, 0, sizeof ru0);
    memset(&ru1, 0, sizeof ru1);
    memset(&ts0, 0, sizeof ts0);
    memset(&ts1, 0, sizeof ts1);
}

static void begin(int who)
{
    prepare();
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    getrusage(who, &ru0);
}

static void end(int who)
{
    getrusage(who, &ru1);
    clock_gettime(CLOCK_MONOTONIC, &ts1);
}

struct delta { long minflt, majflt, us; };

static struct delta delta(void)
{
    struct delta d;
    d.minflt = ru1.ru_minflt - ru0.ru_minflt;
    d.majflt = ru1.ru_majflt - ru0.ru_majflt;
    d.us = (ts1.tv_sec - ts0.tv_sec) * 1000000L + (ts1.tv_nsec - ts0.tv_nsec) / 1000;
    return d;
}

static void emit_delta(const char *phase, long pages, struct delta d)
{
    printf("{\"phase\":\"%s\",\"pages\":%ld,\"minflt\":%ld,\"majflt\":%ld,\"us\":%ld}\n",
           phase, pages, d.minflt, d.majflt, d.us);
}

static void emit(const char *phase, long pages)
{
    emit_delta(phase, pages, delta());
}

/* ----------------------------------------------------------------- loops */

static void write_pages(char *p, long pages)
{
    volatile char *v = p;
    for (long i = 0; i < pages; i++)
        v[i * PG] = 1;
}

static void read_pages(const char *p, long pages)
{
    const volatile char *v = p;
    unsigned long s = 0;
    for (long i = 0; i < pages; i++)
        s += v[i * PG];
    sink = s;
}

/* ----------------------------------------------------------------- helpers */

static long parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    case '\0': break;
    default: errno = EINVAL; die("size");
    }
    return (long)v;
}

static int has_flag(int argc, char **argv, int from, const char *flag)
{
    for (int i = from; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return 1;
    return 0;
}

/* An anonymous private mapping; with huge, 2 MiB aligned and MADV_HUGEPAGE. */
static char *map_anon(long size, int huge, int prot, int extra)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | extra;
    if (!huge) {
        char *p = mmap(NULL, size, prot, flags, -1, 0);
        if (p == MAP_FAILED)
            die("mmap");
        return p;
    }
    char *raw = mmap(NULL, size + HPAGE, prot, flags, -1, 0);
    if (raw == MAP_FAILED)
        die("mmap");
    char *p = (char *)(((uintptr_t)raw + HPAGE - 1) & ~(HPAGE - 1));
    if (p > raw)
        munmap(raw, p - raw);
    if (raw + size + HPAGE > p + size)
        munmap(p + size, raw + size + HPAGE - (p + size));
    if (madvise(p, size, MADV_HUGEPAGE))
        die("madvise(MADV_HUGEPAGE)");
    return p;
}

/* The kB value of "Key:" in a /proc file, or -1. */
static long proc_kb(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t n = strlen(key);
    long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static long proc_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Where a mapping starts inside its 64 KiB-aligned block, in pages: file and
 * shmem read faults map a 64 KiB-aligned window around the faulting page
 * (fault-around), so an unaligned start costs one more fault. */
static void info_offset(const void *p)
{
    info_long("map_offset_pages_in_64k", (long)(((uintptr_t)p % 65536) / PG));
}

static void info_anon(const char *prefix)
{
    char key[96];
    snprintf(key, sizeof key, "%sanon_kb", prefix);
    info_long(key, proc_kb("/proc/self/smaps_rollup", "Anonymous"));
    snprintf(key, sizeof key, "%sanon_huge_kb", prefix);
    info_long(key, proc_kb("/proc/self/smaps_rollup", "AnonHugePages"));
}

/* Pages of [fd, size) resident in the page cache (mincore of a mapping). */
static long resident_pages(int fd, long size)
{
    long pages = (size + PG - 1) / PG, n = 0;
    unsigned char *vec;
    void *p;
    if (pages == 0)
        return 0;
    p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap for mincore");
    vec = malloc(pages);
    if (!vec)
        die("malloc");
    if (mincore(p, size, vec))
        die("mincore");
    for (long i = 0; i < pages; i++)
        n += vec[i] & 1;
    free(vec);
    munmap(p, size);
    return n;
}

/* Drop the file's clean page cache (no global state is touched). */
static long make_cold(int fd, long size)
{
    fdatasync(fd);
    if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
        die("posix_fadvise(DONTNEED)");
    return resident_pages(fd, size);
}

/* Library calls made inside a measured window are called once before it
 * (with an empty range), so that the page of libc holding their code is
 * already mapped; the program is linked with -z now, so no lazy symbol
 * binding happens inside a window either. */
static void warm_up_calls(char *p)
{
    char *q = mmap(NULL, PG, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (q == MAP_FAILED)
        die("mmap");
    munmap(q, PG);
    if (p) {
        mlock(p, 0);
        mlock2(p, 0, MLOCK_ONFAULT);
        munlock(p, 0);
        madvise(p, 0, MADV_DONTNEED);
    }
}

/* ------------------------------------------------------------- experiments */

/* anon-first-touch SIZE [hugepage] */
static int x_anon_first_touch(int argc, char **argv)
{
    long size = parse_size(argv[2]), pages = size / PG;
    int huge = has_flag(argc, argv, 3, "hugepage");
    char *p = map_anon(size, huge, PROT_READ | PROT_WRITE, 0);
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("touch", pages);
    info_anon("");
    return 0;
}

/* anon-read-then-write SIZE [hugepage] */
static int x_anon_read_then_write(int argc, char **argv)
{
    long size = parse_size(argv[2]), pages = size / PG;
    int huge = has_flag(argc, argv, 3, "hugepage");
    char *p = map_anon(size, huge, PROT_READ | PROT_WRITE, 0);
    begin(RUSAGE_SELF);
    read_pages(p, pages);
    end(RUSAGE_SELF);
    emit("read", pages);
    info_anon("after_read_");
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("write", pages);
    info_anon("after_write_");
    return 0;
}

/* fork-cow SIZE FRACTION [hugepage]
 * The parent writes every page and forks. The child reads every page, then
 * writes the first FRACTION of the pages, and sends the faults of both loops
 * through a pipe. After the child has exited the parent writes every page again. */
static int x_fork_cow(int argc, char **argv)
{
    long size = parse_size(argv[2]), pages = size / PG;
    double fraction = strtod(argv[3], NULL);
    long cpages = (long)(pages * fraction + 0.5);
    int huge = has_flag(argc, argv, 4, "hugepage");
    int pfd[2];
    struct delta child[2];
    char *p = map_anon(size, huge, PROT_READ | PROT_WRITE, 0);

    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("parent-touch", pages);
    info_anon("parent_");
    if (pipe(pfd))
        die("pipe");
    fflush(stdout);

    struct rusage c0, c1;
    memset(&c0, 0, sizeof c0);
    memset(&c1, 0, sizeof c1);
    getrusage(RUSAGE_CHILDREN, &c0);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        struct delta d[2];
        memset(d, 0, sizeof d);
        prctl(PR_SET_PDEATHSIG, SIGKILL);     /* never outlive the experiment */
        close(pfd[0]);
        begin(RUSAGE_SELF);
        read_pages(p, pages);
        end(RUSAGE_SELF);
        d[0] = delta();
        begin(RUSAGE_SELF);
        write_pages(p, cpages);
        end(RUSAGE_SELF);
        d[1] = delta();
        if (write(pfd[1], d, sizeof d) != sizeof d)
            _exit(3);
        _exit(0);
    }
    close(pfd[1]);
    if (read(pfd[0], child, sizeof child) != sizeof child)
        die("read from child");
    int status;
    if (waitpid(pid, &status, 0) != pid)
        die("waitpid");
    getrusage(RUSAGE_CHILDREN, &c1);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = ECHILD;
        die("child failed");
    }
    emit_delta("child-read", pages, child[0]);
    emit_delta("child-write", cpages, child[1]);
    struct delta ct = { c1.ru_minflt - c0.ru_minflt, c1.ru_majflt - c0.ru_majflt, 0 };
    emit_delta("child-total", pages, ct);

    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("parent-rewrite", pages);
    info_anon("parent_after_rewrite_");
    return 0;
}

/* fork-shared SIZE: the same with a MAP_SHARED|MAP_ANONYMOUS (shmem) mapping. */
static int x_fork_shared(int argc, char **argv)
{
    long size = parse_size(argv[2]), pages = size / PG;
    int pfd[2];
    struct delta child[2];
    (void)argc;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    info_offset(p);
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("parent-touch", pages);
    if (pipe(pfd))
        die("pipe");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        struct delta d[2];
        memset(d, 0, sizeof d);
        prctl(PR_SET_PDEATHSIG, SIGKILL);     /* never outlive the experiment */
        close(pfd[0]);
        begin(RUSAGE_SELF);
        read_pages(p, pages);
        end(RUSAGE_SELF);
        d[0] = delta();
        begin(RUSAGE_SELF);
        write_pages(p, pages);
        end(RUSAGE_SELF);
        d[1] = delta();
        if (write(pfd[1], d, sizeof d) != sizeof d)
            _exit(3);
        _exit(0);
    }
    close(pfd[1]);
    if (read(pfd[0], child, sizeof child) != sizeof child)
        die("read from child");
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
        die("child failed");
    emit_delta("child-read", pages, child[0]);
    emit_delta("child-write", pages, child[1]);
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("parent-rewrite", pages);
    return 0;
}

static int open_file(const char *path, int flags, long *size)
{
    struct stat st;
    int fd = open(path, flags);
    if (fd < 0)
        die("open");
    if (fstat(fd, &st))
        die("fstat");
    *size = st.st_size;
    return fd;
}

/* file-mmap-read PATH [random|sequential] [warm]
 * Shared read-only mapping, one byte read per page. Unless warm, the file's
 * page cache is dropped first (POSIX_FADV_DONTNEED) and checked with mincore. */
static int x_file_mmap_read(int argc, char **argv)
{
    long size;
    int fd = open_file(argv[2], O_RDONLY, &size);
    long pages = (size + PG - 1) / PG;
    int warm = has_flag(argc, argv, 3, "warm");
    long before = warm ? resident_pages(fd, size) : make_cold(fd, size);
    char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap");
    info_offset(p);
    if (has_flag(argc, argv, 3, "random") && madvise(p, size, MADV_RANDOM))
        die("madvise(MADV_RANDOM)");
    if (has_flag(argc, argv, 3, "sequential") && madvise(p, size, MADV_SEQUENTIAL))
        die("madvise(MADV_SEQUENTIAL)");
    begin(RUSAGE_SELF);
    read_pages(p, pages);
    end(RUSAGE_SELF);
    emit("read", pages);
    info_long("file_pages", pages);
    info_long("resident_before", before);
    info_long("resident_after", resident_pages(fd, size));
    return 0;
}

/* file-private PATH [warm] [one]
 * MAP_PRIVATE read/write mapping: read every page (or only the first: one),
 * then write every page (copy-on-write of the page-cache pages). */
static int x_file_private(int argc, char **argv)
{
    long size;
    int fd = open_file(argv[2], O_RDONLY, &size);
    long pages = (size + PG - 1) / PG;
    int warm = has_flag(argc, argv, 3, "warm"), one = has_flag(argc, argv, 3, "one");
    long before = warm ? resident_pages(fd, size) : make_cold(fd, size);
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        die("mmap");
    info_offset(p);
    begin(RUSAGE_SELF);
    read_pages(p, one ? 1 : pages);
    end(RUSAGE_SELF);
    emit("read", one ? 1 : pages);
    info_anon("after_read_");
    if (!one) {
        begin(RUSAGE_SELF);
        write_pages(p, pages);
        end(RUSAGE_SELF);
        emit("write", pages);
        info_anon("after_write_");
    }
    info_long("file_pages", pages);
    info_long("resident_before", before);
    info_long("resident_after", resident_pages(fd, size));
    return 0;
}

/* ---- overcommit-probe: map (never touch) sizes around RAM + swap. */

static void meminfo_info(const char *prefix)
{
    static const char *keys[] = { "MemTotal", "SwapTotal", "CommitLimit", "Committed_AS" };
    char key[96];
    for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++) {
        snprintf(key, sizeof key, "%s%s_kb", prefix, keys[i]);
        info_long(key, proc_kb("/proc/meminfo", keys[i]));
    }
}

static int try_map(long pages, int prot, int flags, int *err)
{
    void *p = mmap(NULL, (size_t)pages * PG, prot, flags, -1, 0);
    if (p == MAP_FAILED) {
        *err = errno;
        return 0;
    }
    munmap(p, (size_t)pages * PG);
    *err = 0;
    return 1;
}

static void probe(const char *name, long pages, int prot, int flags)
{
    int err, ok = try_map(pages, prot, flags, &err);
    printf("{\"probe\":{\"name\":\"%s\",\"pages\":%ld,\"ok\":%s,\"errno\":\"%s\"}}\n",
           name, pages, ok ? "true" : "false", ok ? "" : (err == ENOMEM ? "ENOMEM" : strerror(err)));
}

static int x_overcommit_probe(int argc, char **argv)
{
    const int RW = PROT_READ | PROT_WRITE, PA = MAP_PRIVATE | MAP_ANONYMOUS;
    long ram = -1, swap = -1, limit = -1, boundary = -1;
    (void)argc; (void)argv;
    info_long("overcommit_memory", proc_long("/proc/sys/vm/overcommit_memory"));
    info_long("overcommit_ratio", proc_long("/proc/sys/vm/overcommit_ratio"));
    meminfo_info("before_");

    /* The largest private writable anonymous mapping that succeeds. MemTotal
     * grows while memory is initialised lazily: retry until it held still. */
    begin(RUSAGE_SELF);
    for (int attempt = 0; attempt < 5; attempt++) {
        ram = proc_kb("/proc/meminfo", "MemTotal") / (PG / 1024);
        swap = proc_kb("/proc/meminfo", "SwapTotal") / (PG / 1024);
        long lo = 1, hi = 4 * (ram + swap), err;
        int e;
        while (hi - lo > 1) {            /* lo maps, hi does not */
            long mid = lo + (hi - lo) / 2;
            if (try_map(mid, RW, PA, &e))
                lo = mid;
            else
                hi = mid;
        }
        boundary = lo;
        err = proc_kb("/proc/meminfo", "MemTotal") / (PG / 1024);
        if (err == ram)
            break;
    }
    end(RUSAGE_SELF);
    struct delta search = delta();
    info_long("ram_pages", ram);
    info_long("swap_pages", swap);
    info_long("largest_mapping_pages", boundary);
    limit = ram + swap;

    probe("ram+swap", limit, RW, PA);
    probe("ram+swap+1", limit + 1, RW, PA);
    probe("2x-noreserve", 2 * limit, RW, PA | MAP_NORESERVE);
    probe("2x-readonly", 2 * limit, PROT_READ, PA);
    probe("ram+swap+1-shared", limit + 1, RW, MAP_SHARED | MAP_ANONYMOUS);
    probe("ram+swap-shared", limit, RW, MAP_SHARED | MAP_ANONYMOUS);

    /* Mode 0 checks each request alone: two mappings of 3/4 of RAM+swap
     * both succeed, and Committed_AS grows by what they hold. */
    long part = limit / 4 * 3;
    long c0 = proc_kb("/proc/meminfo", "Committed_AS");
    void *a = mmap(NULL, (size_t)part * PG, RW, PA, -1, 0);
    void *b = mmap(NULL, (size_t)part * PG, RW, PA, -1, 0);
    long c1 = proc_kb("/proc/meminfo", "Committed_AS");
    printf("{\"probe\":{\"name\":\"two-3/4\",\"pages\":%ld,\"ok\":%s,\"errno\":\"\"}}\n", part,
           a != MAP_FAILED && b != MAP_FAILED ? "true" : "false");
    if (a != MAP_FAILED)
        munmap(a, (size_t)part * PG);
    if (b != MAP_FAILED)
        munmap(b, (size_t)part * PG);
    long c2 = proc_kb("/proc/meminfo", "Committed_AS");
    info_long("committed_delta_two_kb", c1 - c0);
    info_long("committed_after_unmap_delta_kb", c2 - c0);
    info_long("two_mappings_kb", 2 * part * (PG / 1024));
    emit_delta("search", boundary, search);
    meminfo_info("after_");
    return 0;
}

/* mlock SIZE [onfault]: mlock (or mlock2 MLOCK_ONFAULT) a fresh mapping, then write it. */
static int x_mlock(int argc, char **argv)
{
    long size = parse_size(argv[2]), pages = size / PG;
    int onfault = has_flag(argc, argv, 3, "onfault");
    char *p = map_anon(size, 0, PROT_READ | PROT_WRITE, 0);
    int r;
    warm_up_calls(p);
    begin(RUSAGE_SELF);
    r = onfault ? mlock2(p, size, MLOCK_ONFAULT) : mlock(p, size);
    end(RUSAGE_SELF);
    if (r)
        die("mlock");
    emit("mlock", pages);
    info_long("locked_kb_after_mlock", proc_kb("/proc/self/status", "VmLck"));
    info_long("rss_anon_kb_after_mlock", proc_kb("/proc/self/status", "RssAnon"));
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("touch", pages);
    info_long("rss_anon_kb_after_touch", proc_kb("/proc/self/status", "RssAnon"));
    begin(RUSAGE_SELF);
    r = munlock(p, size);
    end(RUSAGE_SELF);
    if (r)
        die("munlock");
    emit("munlock", pages);
    return 0;
}

/* populate SIZE: mmap with MAP_POPULATE, then write every page. */
static int x_populate(int argc, char **argv)
{
    long size = parse_size(argv[2]), pages = size / PG;
    char *p;
    (void)argc;
    warm_up_calls(NULL);
    begin(RUSAGE_SELF);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    end(RUSAGE_SELF);
    if (p == MAP_FAILED)
        die("mmap");
    emit("mmap-populate", pages);
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("touch", pages);
    return 0;
}

/* madvise-dontneed SIZE: write, MADV_DONTNEED, write again, MADV_DONTNEED, read. */
static int x_madvise_dontneed(int argc, char **argv)
{
    long size = parse_size(argv[2]), pages = size / PG;
    char *p = map_anon(size, 0, PROT_READ | PROT_WRITE, 0);
    (void)argc;
    warm_up_calls(p);
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("touch", pages);
    begin(RUSAGE_SELF);
    if (madvise(p, size, MADV_DONTNEED))
        die("madvise(MADV_DONTNEED)");
    end(RUSAGE_SELF);
    emit("dontneed", pages);
    info_long("anon_kb_after_dontneed", proc_kb("/proc/self/smaps_rollup", "Anonymous"));
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("touch-again", pages);
    madvise(p, size, MADV_DONTNEED);
    begin(RUSAGE_SELF);
    read_pages(p, pages);
    end(RUSAGE_SELF);
    emit("read-after-dontneed", pages);
    return 0;
}

/* madvise-free SIZE: write, MADV_FREE, write again (no pressure: pages stay). */
static int x_madvise_free(int argc, char **argv)
{
    long size = parse_size(argv[2]), pages = size / PG;
    char *p = map_anon(size, 0, PROT_READ | PROT_WRITE, 0);
    (void)argc;
    warm_up_calls(p);
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("touch", pages);
    begin(RUSAGE_SELF);
    if (madvise(p, size, MADV_FREE))
        die("madvise(MADV_FREE)");
    end(RUSAGE_SELF);
    emit("free", pages);
    info_long("lazyfree_kb", proc_kb("/proc/self/smaps_rollup", "LazyFree"));
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("touch-again", pages);
    info_long("lazyfree_kb_after_touch", proc_kb("/proc/self/smaps_rollup", "LazyFree"));
    return 0;
}

/* brk-grow SIZE: grow the break by SIZE and write it; shrink, grow, write again. */
static int x_brk_grow(int argc, char **argv)
{
    long size = parse_size(argv[2]), pages = size / PG;
    (void)argc;
    /* Start on a page boundary so that SIZE bytes are exactly SIZE/PG pages. */
    char *cur = sbrk(0);
    long pad = (PG - ((uintptr_t)cur % PG)) % PG;
    if (pad && sbrk(pad) == (void *)-1)
        die("sbrk pad");
    char *p = sbrk(size);
    if (p == (void *)-1)
        die("sbrk");
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("touch", pages);
    if (sbrk(-size) == (void *)-1 || sbrk(size) == (void *)-1)
        die("sbrk shrink/grow");
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("touch-after-shrink-grow", pages);
    return 0;
}

/* mprotect SIZE: a written region made read-only then writable again, written;
 * the same through PROT_NONE; and a region read (zero page) while read-only,
 * made writable, written. */
static int x_mprotect(int argc, char **argv)
{
    long size = parse_size(argv[2]), pages = size / PG;
    const int RW = PROT_READ | PROT_WRITE;
    char *p = map_anon(size, 0, RW, 0);
    (void)argc;
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("touch", pages);
    if (mprotect(p, size, PROT_READ) || mprotect(p, size, RW))
        die("mprotect");
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("write-after-ro-rw", pages);
    if (mprotect(p, size, PROT_NONE) || mprotect(p, size, RW))
        die("mprotect");
    begin(RUSAGE_SELF);
    write_pages(p, pages);
    end(RUSAGE_SELF);
    emit("write-after-none-rw", pages);
    if (mprotect(p, size, PROT_READ))
        die("mprotect");
    begin(RUSAGE_SELF);
    read_pages(p, pages);
    end(RUSAGE_SELF);
    emit("read-while-ro", pages);

    char *q = map_anon(size, 0, PROT_READ, 0);
    begin(RUSAGE_SELF);
    read_pages(q, pages);
    end(RUSAGE_SELF);
    emit("ro-read-zero", pages);
    if (mprotect(q, size, RW))
        die("mprotect");
    begin(RUSAGE_SELF);
    write_pages(q, pages);
    end(RUSAGE_SELF);
    emit("write-after-rw", pages);
    return 0;
}

struct experiment {
    const char *name;
    int min_args;
    int (*fn)(int, char **);
    const char *usage;
};

static const struct experiment EXPERIMENTS[] = {
    { "anon-first-touch", 1, x_anon_first_touch, "SIZE [hugepage]" },
    { "anon-read-then-write", 1, x_anon_read_then_write, "SIZE [hugepage]" },
    { "fork-cow", 2, x_fork_cow, "SIZE FRACTION [hugepage]" },
    { "fork-shared", 1, x_fork_shared, "SIZE" },
    { "file-mmap-read", 1, x_file_mmap_read, "PATH [random|sequential] [warm]" },
    { "file-private", 1, x_file_private, "PATH [warm] [one]" },
    { "overcommit-probe", 0, x_overcommit_probe, "" },
    { "mlock", 1, x_mlock, "SIZE [onfault]" },
    { "populate", 1, x_populate, "SIZE" },
    { "madvise-dontneed", 1, x_madvise_dontneed, "SIZE" },
    { "madvise-free", 1, x_madvise_free, "SIZE" },
    { "brk-grow", 1, x_brk_grow, "SIZE" },
    { "mprotect", 1, x_mprotect, "SIZE" },
};

int main(int argc, char **argv)
{
    PG = sysconf(_SC_PAGESIZE);
    prepare();
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        for (unsigned i = 0; i < sizeof EXPERIMENTS / sizeof *EXPERIMENTS; i++)
            printf("%s %s\n", EXPERIMENTS[i].name, EXPERIMENTS[i].usage);
        return 0;
    }
    for (unsigned i = 0; argc >= 2 && i < sizeof EXPERIMENTS / sizeof *EXPERIMENTS; i++)
        if (strcmp(argv[1], EXPERIMENTS[i].name) == 0) {
            if (argc - 2 < EXPERIMENTS[i].min_args) {
                fprintf(stderr, "usage: %s %s %s\n", argv[0], EXPERIMENTS[i].name,
                        EXPERIMENTS[i].usage);
                return 64;
            }
            info_str("experiment", argv[1]);
            info_long("page_size", PG);
            int r = EXPERIMENTS[i].fn(argc, argv);
            fflush(stdout);
            return r;
        }
    fprintf(stderr, "usage: %s EXPERIMENT ARGS... (%s list: the experiments)\n", argv[0], argv[0]);
    return 64;
}
