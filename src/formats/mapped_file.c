/* mapped_file.c - see mapped_file.h. */
#include "formats/mapped_file.h"

#include <errno.h>
#include <unistd.h>

#include "os.h"

bitnet_status bn_map_file(const char *path, int use_mmap, void **data, uint64_t *size_out) {
    *data = NULL;
    *size_out = 0;
    int fd = bn_os_open_read(path);
    if (fd < 0 && errno == EISDIR) return bn_error(BITNET_ERR_IO, "%s: not a regular file", path);
    if (fd < 0) return bn_error(BITNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint64_t fsize = 0;
    if (bn_os_file_size(fd, &fsize) != 0) {
        close(fd);
        return bn_error(BITNET_ERR_IO, "%s: not a regular file", path);
    }
    if (fsize > SIZE_MAX) {
        close(fd);
        return bn_error(BITNET_ERR_IO, "%s: file too large to map", path);
    }
    const size_t size = (size_t)fsize;
    void *map = NULL;
    int failed = 0;
    if (size && use_mmap) {
        failed = !(map = bn_os_map_file(fd, size));
    } else if (size) {
        failed = !(map = bn_os_alloc_pages(size, 0, NULL));
        for (size_t got = 0; map && got < size;) {
            /* read(2) takes an unsigned count on Windows: at most 1 GiB per call */
            ssize_t k = read(fd, (uint8_t *)map + got, (unsigned)BN_MIN(size - got, (size_t)1 << 30));
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) {
                const int e = errno;
                bn_os_unmap(map, size);
                close(fd);
                return bn_error(BITNET_ERR_IO, "%s: read error: %s", path, k ? strerror(e) : "file shrank");
            }
            got += (size_t)k;
        }
    }
    const int e = errno;
    close(fd); /* a mapping keeps the file alive */
    if (failed)
        return bn_error(BITNET_ERR_IO, "%s: cannot %s %zu bytes: %s", path, use_mmap ? "map" : "allocate", size, strerror(e));
    *data = map;
    *size_out = size;
    return BITNET_OK;
}

bitnet_status bn_read_file(const char *path, size_t max, char **out, size_t *len, int *missing) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (missing) *missing = !f && errno == ENOENT;
    if (!f) return bn_error(BITNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    bitnet_status st = BITNET_OK;
    for (;;) {
        if (n == cap) { /* grow by doubling, to one byte past max (to see that the file is longer) */
            size_t nc = cap ? cap * 2 : 1 << 16;
            if (nc > max + 1) nc = max + 1;
            char *nb = nc > cap ? realloc(buf, nc + 1) : NULL;
            if (!nb) {
                st = nc > cap ? bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path)
                              : bn_error(BITNET_ERR_FORMAT, "%s: larger than %zu bytes", path, max);
                break;
            }
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (!st && ferror(f)) st = bn_error(BITNET_ERR_IO, "%s: read error: %s", path, strerror(errno));
    if (!st && n > max) st = bn_error(BITNET_ERR_FORMAT, "%s: larger than %zu bytes", path, max);
    fclose(f);
    if (st) {
        free(buf);
        return st;
    }
    if (!buf && !(buf = malloc(1))) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return BITNET_OK;
}

static const uint8_t k_empty_input[1];

bitnet_status bn_input_acquire(const char *name, const void *data, uint64_t size, char **path, const uint8_t **base,
                               uint64_t *out_size, int *owns) {
    const int from_file = data == NULL;
    void *map = (void *)data;
    if (!name) name = "(memory)";
    if (from_file) {
        bitnet_status st = bn_map_file(name, 1, &map, &size);
        if (st != BITNET_OK) return st;
    }
    *path = malloc(strlen(name) + 1);
    if (!*path) {
        if (from_file && map) bn_os_unmap(map, (size_t)size);
        return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", name);
    }
    strcpy(*path, name);
    *base = map ? map : k_empty_input;
    *out_size = size;
    *owns = from_file && map != NULL;
    return BITNET_OK;
}

void bn_input_release(char *path, const uint8_t *base, uint64_t size, int owns) {
    if (owns) bn_os_unmap((void *)base, (size_t)size);
    free(path);
}
