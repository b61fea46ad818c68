/* atomic_file.c - see atomic_file.h. */
#include "formats/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#include "os.h"

#define TMP_TAG ".bitnet-tmp."

/* PATH's directory ("." when none) and base name, in caller buffers. */
static int split_path(const char *path, char *dir, size_t dcap, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    const int n = snprintf(dir, dcap, "%.*s", slash ? (int)BN_MAX(slash - path, 1) : 1, slash ? path : ".");
    return n > 0 && (size_t)n < dcap && **base;
}

/* Removes temporaries of `base` in `dir` whose writer process is gone. */
static void sweep_stale(const char *dir, const char *base) {
    char prefix[512];
    const int plen = snprintf(prefix, sizeof prefix, ".%s" TMP_TAG, base);
    if (plen <= 0 || (size_t)plen >= sizeof prefix) return;
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, (size_t)plen) != 0) continue;
        char *end;
        const long pid = strtol(e->d_name + plen, &end, 10);
        if (pid <= 0 || *end != '.' || pid == bn_os_pid()) continue;
        if (bn_os_process_alive(pid) != 0) continue; /* alive, or not ours to judge */
        char full[4096];
        if (snprintf(full, sizeof full, "%s/%s", dir, e->d_name) < (int)sizeof full) unlink(full);
    }
    closedir(d);
}

bitnet_status bn_atomic_open(bn_atomic_file *f, const char *path) {
    static _Atomic unsigned counter;
    char dir[4096];
    const char *base;
    f->fd = -1;
    f->err = 0;
    f->path = path;
    f->tmp = NULL;
    if (!path || !split_path(path, dir, sizeof dir, &base))
        return bn_error(BITNET_ERR_ARG, "%s: not a file path", path ? path : "(null)");
    sweep_stale(dir, base);
    const size_t cap = strlen(dir) + strlen(base) + 64;
    if (!(f->tmp = malloc(cap))) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(f->tmp, cap, "%s/.%s" TMP_TAG "%ld.%u", dir, base, bn_os_pid(), counter++);
        f->fd = bn_os_create_excl(f->tmp);
        if (f->fd >= 0 || errno != EEXIST) break;
    }
    if (f->fd < 0) {
        bitnet_status st = bn_error(BITNET_ERR_IO, "%s: cannot create a temporary file in %s: %s", path, dir,
                                    strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        return st;
    }
    return BITNET_OK;
}

void bn_atomic_fail(bn_atomic_file *f, int err) {
    if (!f->err) f->err = err ? err : EIO;
}

void bn_atomic_write(bn_atomic_file *f, const void *p, uint64_t n) {
    const uint8_t *c = p;
    while (!f->err && n > 0) {
        ssize_t k = write(f->fd, c, (unsigned)BN_MIN(n, (uint64_t)1 << 30));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            bn_atomic_fail(f, k == 0 ? EIO : errno);
            return;
        }
        c += k;
        n -= (uint64_t)k;
    }
}

void bn_atomic_write_zeros(bn_atomic_file *f, uint64_t n) {
    static const uint8_t zeros[4096];
    for (; n > 0; n -= BN_MIN(n, sizeof zeros)) bn_atomic_write(f, zeros, BN_MIN(n, sizeof zeros));
}

/* Makes the rename itself durable; best effort. */
static void fsync_parent(const char *path) {
    char dir[4096];
    const char *base;
    if (split_path(path, dir, sizeof dir, &base)) bn_os_sync_dir(dir);
}

void bn_atomic_abort(bn_atomic_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp) unlink(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
}

bitnet_status bn_atomic_finish(bn_atomic_file *f) {
    int e;
    if (!f->err && (e = bn_os_sync(f->fd)) != 0) bn_atomic_fail(f, e);
    if (close(f->fd) != 0) bn_atomic_fail(f, errno);
    f->fd = -1;
    if (!f->err) return BITNET_OK;
    bitnet_status st = bn_error(BITNET_ERR_IO, "%s: write failed: %s", f->path, strerror(f->err));
    bn_atomic_abort(f);
    return st;
}

bitnet_status bn_atomic_publish(bn_atomic_file *f) {
    const int e = bn_os_replace(f->tmp, f->path);
    if (e != 0) {
        bitnet_status st = bn_error(BITNET_ERR_IO, "%s: cannot replace it: %s", f->path, strerror(e));
        bn_atomic_abort(f);
        return st;
    }
    fsync_parent(f->path);
    free(f->tmp);
    f->tmp = NULL;
    return BITNET_OK;
}

bitnet_status bn_atomic_commit(bn_atomic_file *f) {
    bitnet_status st = bn_atomic_finish(f);
    return st == BITNET_OK ? bn_atomic_publish(f) : st;
}

bitnet_status bn_atomic_reserve(bn_atomic_file *f, const char *path) {
    bitnet_status st = bn_atomic_open(f, path);
    if (st != BITNET_OK) return st;
    close(f->fd);
    f->fd = -1;
    return BITNET_OK;
}

bitnet_status bn_atomic_write_file(const char *path, const void *data, uint64_t n) {
    bn_atomic_file f;
    bitnet_status st = bn_atomic_open(&f, path);
    if (st != BITNET_OK) return st;
    bn_atomic_write(&f, data, n);
    return bn_atomic_commit(&f);
}
