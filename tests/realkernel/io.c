/*
 * io.c - buffered writes, dirty data, writeback, fsync and drop_caches on the
 * running kernel, one experiment per run, driven phase by phase by
 * tests/realkernel/io.py.
 *
 *   io EXPERIMENT DIR ARGS...
 *
 * DIR is the directory the experiment's files go to (a loop-mounted ext4 or
 * a tmpfs, reached through /proc/<holder>/root). Sizes are in bytes and may
 * carry a K, M or G suffix (binary units).
 *
 * Protocol (JSON lines on stdout, one word per line on stdin):
 *
 *   -> {"ready":"write","sample":0}     before each phase; the driver takes
 *                                       its "before" snapshot (memcg
 *                                       memory.stat, /proc/vmstat,
 *                                       /proc/meminfo) and answers
 *   <- go
 *   -> {"phase":"write","pages":4096,"minflt":0,"majflt":0,"us":8123,
 *       "resident":{"data":4096},       after the phase; the driver takes
 *       "cachestat":{"data":[4096,4096,0]}}  its "after" snapshot at once
 *   <- ok                               and only then does the program go on
 *   -> {"scan":{...}}                   kpageflags summary (settle phases)
 *   -> {"info":{"key":value}}           facts, merged into one dict
 *   -> {"done":0}                       at the end; exits after the next line
 *   -> {"error":"...","errno":N}        failure (exit status 2)
 *
 * With "sample":S the driver samples the counters every S seconds while the
 * phase runs (background writeback). The minor/major faults are the
 * getrusage(RUSAGE_SELF) deltas taken immediately around the phase's system
 * calls or loop; "us" is the phase's wall time; "resident" the mincore page
 * count of every file of the experiment that exists at the phase's end, and
 * "cachestat" its [cached, dirty, writeback] pages by cachestat(2), both
 * taken after the fault window.
 *
 * A "settle" phase does nothing for 2.2 s but scan /proc/kpageflags and
 * /proc/kpagecgroup for the pages charged to this process's memory cgroup:
 * the per-page LRU, active, referenced, dirty and writeback flags and the
 * folio sizes (exact, unlike memory.stat, whose per-cpu counters are folded
 * in only when enough changes piled up or every 2 s). The driver's snapshot
 * after a settle phase is therefore exact for the memcg.
 *
 * Compiled by tests/realkernel/io.py with "gcc -O1 -Wl,-z,now".
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
static char *buf;                      /* the write/read buffer, pre-faulted */
static long buf_size;

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

/* -1 when the file does not exist (unlinked). */
static long resident_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    long n;
    if (fd < 0)
        return -1;
    n = resident_fd(fd);
    close(fd);
    return n;
}

/* cachestat(2) (Linux 6.5): the folios of a file in the page cache, dirty,
 * under writeback, counted by the page cache itself (mincore reports only
 * uptodate folios). */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cachestat_range { uint64_t off, len; };
struct cachestat { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };

static int cachestat_path(const char *path, struct cachestat *cs)
{
    struct cachestat_range r = { 0, 0 };
    int fd = open(path, O_RDONLY), rc;
    if (fd < 0)
        return -1;
    memset(cs, 0, sizeof *cs);
    rc = syscall(__NR_cachestat, fd, &r, cs, 0);
    close(fd);
    return rc;
}

static void print_resident(void)
{
    int first = 1;
    printf("\"resident\":{");
    for (int i = 0; i < nfiles; i++) {
        long n = resident_path(files[i].path);
        if (n < 0)
            continue;
        printf("%s\"%s\":%ld", first ? "" : ",", files[i].name, n);
        first = 0;
    }
    printf("},\"cachestat\":{");
    first = 1;
    for (int i = 0; i < nfiles; i++) {
        struct cachestat cs;
        if (cachestat_path(files[i].path, &cs))
            continue;
        printf("%s\"%s\":[%llu,%llu,%llu]", first ? "" : ",", files[i].name,
               (unsigned long long)cs.nr_cache, (unsigned long long)cs.nr_dirty,
               (unsigned long long)cs.nr_writeback);
        first = 0;
    }
    printf("}");
}

/* ------------------------------------------------------------------ phases */

static void wait_line(void)
{
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        _exit(3);                       /* the driver went away */
}

static void wait_go(const char *phase, double sample)
{
    printf("{\"ready\":\"%s\",\"sample\":%g}\n", phase, sample);
    fflush(stdout);
    wait_line();
}

static void begin(const char *phase, double sample)
{
    wait_go(phase, sample);
    memset(&ru0, 0, sizeof ru0);
    memset(&ru1, 0, sizeof ru1);
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    getrusage(RUSAGE_SELF, &ru0);
}

static void end(const char *phase, long pages)
{
    getrusage(RUSAGE_SELF, &ru1);
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    printf("{\"phase\":\"%s\",\"pages\":%ld,\"minflt\":%ld,\"majflt\":%ld,\"us\":%ld,",
           phase, pages, ru1.ru_minflt - ru0.ru_minflt, ru1.ru_majflt - ru0.ru_majflt,
           (ts1.tv_sec - ts0.tv_sec) * 1000000L + (ts1.tv_nsec - ts0.tv_nsec) / 1000);
    print_resident();
    printf("}\n");
    fflush(stdout);
    wait_line();                        /* the driver has its "after" snapshot */
}

/* ----------------------------------------------------- kpageflags summary */

#define KPF_DIRTY 4
#define KPF_LRU 5
#define KPF_ACTIVE 6
#define KPF_SLAB 7
#define KPF_WRITEBACK 8
#define KPF_MMAP 11
#define KPF_ANON 12
#define KPF_SWAPBACKED 14
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define KPF_UPTODATE 3
#define KPF_REFERENCED 2
#define KPF_PGTABLE 26
#define BIT(f, b) (((f) >> (b)) & 1)

enum { K_FILE, K_SHMEM, K_ANON, K_OTHER, NKINDS };
static const char *kind_name[NKINDS] = { "file", "shmem", "anon", "other" };
struct kind {
    long pages, lru, active, referenced, dirty, writeback, mapped;
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

/* Every page charged to this memory cgroup, summarised by kind. */
static uint64_t fl[65536], cg[65536];

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
                int order = 0;
                while ((1L << (order + 1)) <= folio && order < 11)
                    order++;
                kinds[folio_kind].folios[order]++;
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
            if (folio && tail) {
                folio++;
            } else {
                folio = 1;
                folio_kind = kd;
            }
        }
        pfn += n;
    }
    if (folio) {
        int order = 0;
        while ((1L << (order + 1)) <= folio && order < 11)
            order++;
        kinds[folio_kind].folios[order]++;
    }
    close(ff);
    close(fc);
    printf("{\"scan\":{");
    for (int kd = 0; kd < NKINDS; kd++) {
        struct kind *s = &kinds[kd];
        printf("%s\"%s\":{\"pages\":%ld,\"lru\":%ld,\"active\":%ld,\"referenced\":%ld,"
               "\"dirty\":%ld,\"writeback\":%ld,\"mapped\":%ld,\"folios\":{",
               kd ? "," : "", kind_name[kd], s->pages, s->lru, s->active, s->referenced,
               s->dirty, s->writeback, s->mapped);
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

/* A phase in which nothing happens for 2.2 s (memcg stats get folded in)
 * but a scan of this group's pages. */
static void settle(const char *name)
{
    begin(name, 0);
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

/* The buffer all writes come from: non-zero bytes, touched before any phase. */
static void make_buffer(long size)
{
    if (size <= buf_size)
        return;
    buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
               -1, 0);
    if (buf == MAP_FAILED)
        die("mmap buffer");
    for (long i = 0; i < size; i++)
        buf[i] = (char)(1 + i % 251);
    buf_size = size;
}

static int create(const char *path)
{
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
    if (fd < 0)
        die(path);
    return fd;
}

static void write_all(int fd, long size, long block, long offset)
{
    for (long done = 0; done < size; done += block) {
        long n = size - done < block ? size - done : block;
        if (pwrite(fd, buf, n, offset + done) != n)
            die("pwrite");
    }
}

static void read_all(int fd, long size, long block)
{
    unsigned long s = 0;
    for (long done = 0; done < size; done += block) {
        long n = size - done < block ? size - done : block;
        if (read(fd, buf, n) != n)
            die("read");
        s += buf[0];
    }
    sink = s;
}

static void drop_caches(void)
{
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0)
        die("open /proc/sys/vm/drop_caches");
    if (write(fd, "1", 1) != 1)
        die("write /proc/sys/vm/drop_caches");
    close(fd);
}

/* Write a new file of size bytes in block-sized write(2)s and fsync it:
 * unmeasured setup. */
static int make_file(const char *path, long size, long block)
{
    int fd = create(path);
    make_buffer(block);
    write_all(fd, size, block, 0);
    if (fsync(fd))
        die("fsync");
    return fd;
}

/* Drop the file's clean pages (fdatasync, POSIX_FADV_DONTNEED), retried
 * while writeback runs; returns the pages still resident. */
static long make_cold(int fd)
{
    long left = -1;
    for (int i = 0; i < 100; i++) {
        if (fdatasync(fd))
            die("fdatasync");
        if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
            die("posix_fadvise(DONTNEED)");
        left = resident_fd(fd);
        if (left == 0) {
            info_long("make_cold_tries", i + 1);
            return 0;
        }
        usleep(100000);
    }
    info_long("make_cold_tries", 100);
    return left;
}

static void phase_fsync(const char *name, int fd, long pages)
{
    begin(name, 0);
    if (fsync(fd))
        die("fsync");
    end(name, pages);
}

static void phase_write(const char *name, int fd, long size, long block, long offset)
{
    make_buffer(block);
    begin(name, 0);
    write_all(fd, size, block, offset);
    end(name, size / PG);
}

/* ------------------------------------------------------------- experiments */

/* write-new DIR SIZE BLOCK: write(2) a new file, fsync it. */
static int x_write_new(int argc, char **argv)
{
    need(argc, 5, "usage: write-new DIR SIZE BLOCK");
    long size = parse_size(argv[3]), block = parse_size(argv[4]);
    int fd = create(add_file(argv[2], "data"));
    phase_write("write", fd, size, block, 0);
    settle("settle-write");
    phase_fsync("fsync", fd, size / PG);
    settle("settle-fsync");
    close(fd);
    return 0;
}

/* write-twice DIR SIZE [BLOCK]: write a new file, overwrite it from offset 0. */
static int x_write_twice(int argc, char **argv)
{
    need(argc, 4, "usage: write-twice DIR SIZE [BLOCK]");
    long size = parse_size(argv[3]), block = argc > 4 ? parse_size(argv[4]) : 1 << 20;
    int fd = create(add_file(argv[2], "data"));
    phase_write("write", fd, size, block, 0);
    settle("settle-write");
    phase_write("overwrite", fd, size, block, 0);
    settle("settle-overwrite");
    phase_fsync("fsync", fd, size / PG);
    settle("settle-fsync");
    close(fd);
    return 0;
}

/* write-then-read DIR SIZE [BLOCK]: write, fsync, read(2) through a new fd. */
static int x_write_then_read(int argc, char **argv)
{
    need(argc, 4, "usage: write-then-read DIR SIZE [BLOCK]");
    long size = parse_size(argv[3]), block = argc > 4 ? parse_size(argv[4]) : 1 << 20;
    const char *path = add_file(argv[2], "data");
    int fd = create(path);
    phase_write("write", fd, size, block, 0);
    phase_fsync("fsync", fd, size / PG);
    settle("settle-fsync");
    close(fd);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path);
    begin("read", 0);
    read_all(fd, size, block);
    end("read", size / PG);
    settle("settle-read");
    close(fd);
    return 0;
}

/* partial-overwrite DIR SIZE: a cold file, one byte written in every 4th page. */
static int x_partial_overwrite(int argc, char **argv)
{
    need(argc, 4, "usage: partial-overwrite DIR SIZE");
    long size = parse_size(argv[3]), pages = size / PG, n = 0;
    int fd = make_file(add_file(argv[2], "data"), size, 1 << 20);
    info_long("resident_after_make_cold", make_cold(fd));
    settle("settle-cold");
    begin("overwrite", 0);
    for (long i = 0; i < pages; i += 4, n++)
        if (pwrite(fd, buf, 1, i * PG + 100) != 1)
            die("pwrite");
    end("overwrite", n);
    settle("settle-overwrite");
    phase_fsync("fsync", fd, n);
    settle("settle-fsync");
    close(fd);
    return 0;
}

/* background-writeback DIR SIZE SECONDS: write, then wait with the driver
 * sampling every 0.5 s. */
static int x_background_writeback(int argc, char **argv)
{
    need(argc, 4, "usage: background-writeback DIR SIZE [SECONDS]");
    long size = parse_size(argv[3]);
    double seconds = argc > 4 ? strtod(argv[4], NULL) : 40;
    int fd = create(add_file(argv[2], "data"));
    phase_write("write", fd, size, 1 << 20, 0);
    begin("wait", 0.5);
    sleep_until(now() + seconds);
    end("wait", 0);
    settle("settle-wait");
    close(fd);
    return 0;
}

static void phase_drop_caches(const char *name)
{
    begin(name, 0);
    drop_caches();
    end(name, 0);
}

/* drop-caches-dirty DIR SIZE: dirty pages survive drop_caches, clean ones
 * do not unless mapped. */
static int x_drop_caches_dirty(int argc, char **argv)
{
    need(argc, 4, "usage: drop-caches-dirty DIR SIZE");
    long size = parse_size(argv[3]), pages = size / PG;
    int fd = create(add_file(argv[2], "dirty"));
    phase_write("write", fd, size, 1 << 20, 0);
    phase_drop_caches("drop-dirty");
    settle("settle-drop-dirty");
    phase_fsync("fsync", fd, pages);
    phase_drop_caches("drop-clean");
    settle("settle-drop-clean");
    close(fd);

    /* A clean file mapped and touched, and a clean file not mapped. */
    int fm = make_file(add_file(argv[2], "mapped"), size, 1 << 20);
    int fu = make_file(add_file(argv[2], "unmapped"), size, 1 << 20);
    char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fm, 0);
    if (p == MAP_FAILED)
        die("mmap");
    begin("map-touch", 0);
    {
        unsigned long s = 0;
        for (long i = 0; i < pages; i++)
            s += ((volatile char *)p)[i * PG];
        sink = s;
    }
    end("map-touch", pages);
    settle("settle-mapped");
    phase_drop_caches("drop-mapped");
    settle("settle-drop-mapped");
    munmap(p, size);
    close(fm);
    close(fu);
    return 0;
}

/* unlink-cached DIR SIZE: unlink a cached file, closed, then held open. */
static int x_unlink_cached(int argc, char **argv)
{
    need(argc, 4, "usage: unlink-cached DIR SIZE");
    long size = parse_size(argv[3]), pages = size / PG;
    const char *a = add_file(argv[2], "closed");
    close(make_file(a, size, 1 << 20));
    settle("settle-a");
    begin("unlink-closed", 0);
    if (unlink(a))
        die("unlink");
    end("unlink-closed", pages);
    settle("settle-unlink-closed");

    const char *b = add_file(argv[2], "open");
    close(make_file(b, size, 1 << 20));
    int fd = open(b, O_RDONLY);
    if (fd < 0)
        die(b);
    settle("settle-b");
    begin("unlink-open", 0);
    if (unlink(b))
        die("unlink");
    end("unlink-open", pages);
    info_long("resident_unlinked_open", resident_fd(fd));
    settle("settle-unlink-open");
    begin("close", 0);
    close(fd);
    end("close", pages);
    settle("settle-close");
    return 0;
}

/* metadata-buffers DIR COLDFILE SIZE: read a cold file, write a new one and
 * fsync, create 1000 small files and syncfs. */
static int x_metadata_buffers(int argc, char **argv)
{
    need(argc, 5, "usage: metadata-buffers DIR COLDNAME SIZE [NSMALL]");
    long size = parse_size(argv[4]), nsmall = argc > 5 ? atol(argv[5]) : 1000;
    const char *cold = add_file(argv[2], argv[3]);
    int fd = open(cold, O_RDONLY);
    if (fd < 0)
        die(cold);
    make_buffer(1 << 20);
    begin("read-cold", 0);
    read_all(fd, size, 1 << 20);
    end("read-cold", size / PG);
    close(fd);
    settle("settle-read");

    fd = create(add_file(argv[2], "new"));
    phase_write("write-new", fd, size, 1 << 20, 0);
    phase_fsync("fsync-new", fd, size / PG);
    settle("settle-write");
    close(fd);

    char dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/small", argv[2]);
    begin("create-small", 0);
    if (mkdir(dir, 0755))
        die("mkdir");
    for (long i = 0; i < nsmall; i++) {
        snprintf(path, sizeof path, "%s/f%04ld", dir, i);
        int f = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (f < 0)
            die(path);
        if (write(f, buf, 4096) != 4096)
            die("write");
        close(f);
    }
    end("create-small", nsmall);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0)
        die(dir);
    begin("syncfs", 0);
    if (syncfs(dfd))
        die("syncfs");
    end("syncfs", nsmall);
    close(dfd);
    settle("settle-small");
    return 0;
}

/* mmap-shared-write DIR SIZE: a cold file mapped MAP_SHARED, one byte
 * written per page, then msync(MS_SYNC). */
static int x_mmap_shared_write(int argc, char **argv)
{
    need(argc, 4, "usage: mmap-shared-write DIR SIZE");
    long size = parse_size(argv[3]), pages = size / PG;
    int fd = make_file(add_file(argv[2], "data"), size, 1 << 20);
    info_long("resident_after_make_cold", make_cold(fd));
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap");
    info_long("map_offset_pages_in_64k", (long)(((uintptr_t)p % 65536) / PG));
    settle("settle-cold");
    begin("touch-write", 0);
    for (long i = 0; i < pages; i++)
        ((volatile char *)p)[i * PG] = 1;
    end("touch-write", pages);
    settle("settle-touch");
    begin("msync", 0);
    if (msync(p, size, MS_SYNC))
        die("msync");
    end("msync", pages);
    settle("settle-msync");
    munmap(p, size);
    close(fd);
    return 0;
}

/* tmpfs-write DIR SIZE: write(2) a file on tmpfs, fsync, unlink. */
static int x_tmpfs_write(int argc, char **argv)
{
    need(argc, 4, "usage: tmpfs-write DIR SIZE");
    long size = parse_size(argv[3]), pages = size / PG;
    const char *path = add_file(argv[2], "data");
    int fd = create(path);
    phase_write("write", fd, size, 1 << 20, 0);
    settle("settle-write");
    phase_fsync("fsync", fd, pages);
    close(fd);
    begin("unlink", 0);
    if (unlink(path))
        die("unlink");
    end("unlink", pages);
    settle("settle-unlink");
    return 0;
}

struct experiment {
    const char *name;
    int (*fn)(int, char **);
};

static const struct experiment experiments[] = {
    { "write-new", x_write_new },
    { "write-twice", x_write_twice },
    { "write-then-read", x_write_then_read },
    { "partial-overwrite", x_partial_overwrite },
    { "background-writeback", x_background_writeback },
    { "drop-caches-dirty", x_drop_caches_dirty },
    { "unlink-cached", x_unlink_cached },
    { "metadata-buffers", x_metadata_buffers },
    { "mmap-shared-write", x_mmap_shared_write },
    { "tmpfs-write", x_tmpfs_write },
};

int main(int argc, char **argv)
{
    PG = sysconf(_SC_PAGESIZE);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc < 3) {
        fprintf(stderr, "usage: io EXPERIMENT DIR ARGS...\n");
        return 1;
    }
    make_buffer(1 << 20);
    memset(fl, 1, sizeof fl);          /* the scan buffers: no faults later */
    memset(cg, 1, sizeof cg);
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
