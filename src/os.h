/* os.h - the operating-system services libbitnet uses, behind one interface.
 *
 * os.c implements them for POSIX (Linux, the BSDs, macOS) and for Windows
 * (Win32 API through mingw-w64); no other file in src/ calls mmap, mlock,
 * sysconf, fsync, rename or their Win32 counterparts. Where a service does not
 * exist on a system (directory fsync, huge pages), it is a documented no-op.
 * Errors are returned as errno values (Win32 errors mapped to the nearest), so
 * callers report them with strerror(). */
#ifndef BN_OS_H
#define BN_OS_H

#include <stddef.h>
#include <stdint.h>

/* Opens PATH for reading (binary, close-on-exec). -1 and errno on failure. */
int bn_os_open_read(const char *path);
/* Creates PATH exclusively for writing (binary, no symlink followed, close-on-exec,
 * mode 0644). -1 and errno on failure (EEXIST when it exists). */
int bn_os_create_excl(const char *path);
/* Size of the regular file behind FD; 0 on success, else an errno value
 * (EINVAL when it is not a regular file). */
int bn_os_file_size(int fd, uint64_t *size);
/* Flushes FD's data to the disk (fsync; _commit on Windows). 0 or errno. */
int bn_os_sync(int fd);
/* Makes a rename in DIR durable (fsync of the directory); best effort, and a
 * no-op on Windows, where the rename below is write-through. */
void bn_os_sync_dir(const char *dir);
/* Replaces TO with FROM atomically, as rename(2) does (MoveFileEx with
 * MOVEFILE_REPLACE_EXISTING on Windows). 0 or errno. */
int bn_os_replace(const char *from, const char *to);

/* A read-only view of the first SIZE bytes of the file behind FD; the view
 * keeps the file alive after FD is closed. NULL and errno on failure. */
void *bn_os_map_file(int fd, size_t size);
/* SIZE bytes of zeroed, page-aligned, read-write memory. With try_huge, first
 * explicit huge pages (Linux MAP_HUGETLB), else ordinary pages with a
 * transparent-huge-page hint; *huge (may be NULL) tells which. NULL on failure. */
void *bn_os_alloc_pages(size_t size, int try_huge, int *huge);
/* Frees a bn_os_map_file view or a bn_os_alloc_pages block. */
void bn_os_unmap(void *p, size_t size);
/* Locks [p, p+size) in RAM (mlock; VirtualLock after growing the working set
 * on Windows). 0 or errno (ENOMEM/EPERM: over the limit). */
int bn_os_lock(const void *p, size_t size);
void bn_os_unlock(const void *p, size_t size);

/* Online CPUs; 0 when unknown. */
int bn_os_cpu_count(void);
/* Pins the calling thread to CPU; best effort (a no-op where unsupported). */
void bn_os_pin_thread(int cpu);
/* Gives the CPU to another runnable thread. */
void bn_os_yield(void);

/* This process's id, and whether process PID still runs (1), is gone (0), or
 * cannot be told (-1: another user's, or no way to ask). */
long bn_os_pid(void);
int bn_os_process_alive(long pid);

/* bn_time_ns, bn_peak_rss_bytes, bn_current_rss_bytes and bn_aligned_alloc
 * (common.h) are defined in os.c too. */

#endif
