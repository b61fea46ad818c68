/* atomic_file.c - see atomic_file.h. */
#include "formats/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

bitnet_status bn_atomic_open(bn_atomic_file *f, const char *path) {
    f->fd = -1;
    f->err = 0;
    f->path = path;
    f->tmp = malloc(strlen(path) + 5);
    if (!f->tmp) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    sprintf(f->tmp, "%s.tmp", path);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        bitnet_status st = bn_error(BITNET_ERR_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
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
        ssize_t k = write(f->fd, c, (size_t)BN_MIN(n, (uint64_t)1 << 30));
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
    const char *slash = strrchr(path, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)BN_MAX(slash - path, 1) : 1, slash ? path : ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

bitnet_status bn_atomic_commit(bn_atomic_file *f) {
    if (!f->err && fsync(f->fd) != 0) bn_atomic_fail(f, errno);
    if (close(f->fd) != 0) bn_atomic_fail(f, errno);
    f->fd = -1;
    if (!f->err && rename(f->tmp, f->path) != 0) bn_atomic_fail(f, errno);
    bitnet_status st = BITNET_OK;
    if (f->err) {
        unlink(f->tmp);
        st = bn_error(BITNET_ERR_IO, "%s: write failed: %s", f->path, strerror(f->err));
    } else {
        fsync_parent(f->path);
    }
    free(f->tmp);
    f->tmp = NULL;
    return st;
}
