/* os.c - see os.h: POSIX first, then Windows. Each function is short, so the two
 * implementations sit side by side rather than in two files. */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "common.h"

#ifndef _WIN32 /* ------------------------------------------------------------ POSIX */

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __linux__
#include <pthread.h>
#endif

int bn_os_open_read(const char *path) { return open(path, O_RDONLY | O_CLOEXEC); }

int bn_os_create_excl(const char *path) {
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
}

int bn_os_file_size(int fd, uint64_t *size) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) return errno;
    if (!S_ISREG(sb.st_mode) || sb.st_size < 0) return EINVAL;
    *size = (uint64_t)sb.st_size;
    return 0;
}

int bn_os_sync(int fd) { return fsync(fd) == 0 ? 0 : errno; }

void bn_os_sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int bn_os_replace(const char *from, const char *to) { return rename(from, to) == 0 ? 0 : errno; }

void *bn_os_map_file(int fd, size_t size) {
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *bn_os_alloc_pages(size_t size, int try_huge, int *huge) {
    void *p = MAP_FAILED;
    if (huge) *huge = 0;
#ifdef MAP_HUGETLB
    if (try_huge) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
        if (huge) *huge = p != MAP_FAILED;
    }
#endif
    if (p == MAP_FAILED) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
        if (try_huge) madvise(p, size, MADV_HUGEPAGE);
#endif
    }
    return p;
}

void bn_os_unmap(void *p, size_t size) {
    if (p) munmap(p, size);
}

int bn_os_lock(const void *p, size_t size) { return mlock(p, size) == 0 ? 0 : errno; }
void bn_os_unlock(const void *p, size_t size) { munlock(p, size); }

void *bn_aligned_alloc(size_t size) {
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 64) != 0) return NULL;
    return p;
}
void bn_aligned_free(void *p) { free(p); }

int bn_os_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 1 << 20 ? (int)n : 0;
}

void bn_os_pin_thread(int cpu) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
#else
    BN_UNUSED(cpu);
#endif
}

void bn_os_yield(void) { sched_yield(); }

long bn_os_pid(void) { return (long)getpid(); }

int bn_os_process_alive(long pid) {
    if (kill((pid_t)pid, 0) == 0) return 1;
    return errno == ESRCH ? 0 : -1;
}

static uint64_t read_status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    uint64_t kb = 0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0) {
            kb = strtoull(line + n, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

uint64_t bn_peak_rss_bytes(void) { return read_status_kb("VmHWM:") * 1024; }
uint64_t bn_current_rss_bytes(void) { return read_status_kb("VmRSS:") * 1024; }

uint64_t bn_time_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#else /* ---------------------------------------------------------------- Windows */

#define WIN32_LEAN_AND_MEAN
#define PSAPI_VERSION 2 /* GetProcessMemoryInfo from kernel32 (K32...), no psapi.dll */
#include <io.h>
#include <malloc.h>
#include <windows.h>
#include <psapi.h>

/* The errno value nearest to a Win32 error, for strerror(). */
static int errno_of(DWORD e) {
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND: return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION: return EACCES;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS: return EEXIST;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_WORKING_SET_QUOTA:
    case ERROR_COMMITMENT_LIMIT: return ENOMEM;
    case ERROR_PRIVILEGE_NOT_HELD: return EPERM;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL: return ENOSPC;
    default: return EIO;
    }
}

/* A directory cannot be opened here (it can on POSIX, then fails the regular-file
 * check): EISDIR, so that callers give the same message. */
int bn_os_open_read(const char *path) {
    const DWORD attr = GetFileAttributesA(path);
    if (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY)) {
        errno = EISDIR;
        return -1;
    }
    return _open(path, _O_RDONLY | _O_BINARY | _O_NOINHERIT);
}

int bn_os_create_excl(const char *path) {
    return _open(path, _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
}

int bn_os_file_size(int fd, uint64_t *size) {
    struct __stat64 sb;
    if (_fstat64(fd, &sb) != 0) return errno;
    if (!(sb.st_mode & _S_IFREG) || sb.st_size < 0) return EINVAL;
    *size = (uint64_t)sb.st_size;
    return 0;
}

int bn_os_sync(int fd) { return _commit(fd) == 0 ? 0 : errno; }

void bn_os_sync_dir(const char *dir) { BN_UNUSED(dir); }

int bn_os_replace(const char *from, const char *to) {
    if (MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) return 0;
    return errno_of(GetLastError());
}

void *bn_os_map_file(int fd, size_t size) {
    HANDLE file = (HANDLE)_get_osfhandle(fd);
    if (file == INVALID_HANDLE_VALUE) {
        errno = EBADF;
        return NULL;
    }
    HANDLE mapping = CreateFileMappingA(file, NULL, PAGE_READONLY, (DWORD)((uint64_t)size >> 32), (DWORD)size, NULL);
    if (!mapping) {
        errno = errno_of(GetLastError());
        return NULL;
    }
    void *p = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, size);
    const DWORD e = GetLastError();
    CloseHandle(mapping); /* the view keeps the mapping (and the file) alive */
    if (!p) errno = errno_of(e);
    return p;
}

void *bn_os_alloc_pages(size_t size, int try_huge, int *huge) {
    BN_UNUSED(try_huge); /* large pages need SeLockMemoryPrivilege: not asked for */
    if (huge) *huge = 0;
    return VirtualAlloc(NULL, size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
}

/* A view of a file and a VirtualAlloc block are freed by different calls. */
void bn_os_unmap(void *p, size_t size) {
    BN_UNUSED(size);
    MEMORY_BASIC_INFORMATION mi;
    if (!p || !VirtualQuery(p, &mi, sizeof mi)) return;
    if (mi.Type == MEM_MAPPED) UnmapViewOfFile(p);
    else VirtualFree(p, 0, MEM_RELEASE);
}

/* VirtualLock is limited by the working set's minimum: raise it by SIZE first. */
int bn_os_lock(const void *p, size_t size) {
    SIZE_T lo, hi;
    HANDLE self = GetCurrentProcess();
    if (GetProcessWorkingSetSize(self, &lo, &hi)) SetProcessWorkingSetSize(self, lo + size, hi + size);
    return VirtualLock((void *)p, size) ? 0 : errno_of(GetLastError());
}
void bn_os_unlock(const void *p, size_t size) { VirtualUnlock((void *)p, size); }

void *bn_aligned_alloc(size_t size) { return _aligned_malloc(size ? size : 64, 64); }
void bn_aligned_free(void *p) { _aligned_free(p); }

int bn_os_cpu_count(void) {
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    return n > 0 && n < 1 << 20 ? (int)n : 0;
}

void bn_os_pin_thread(int cpu) {
    if (cpu >= 0 && cpu < 64) SetThreadAffinityMask(GetCurrentThread(), (DWORD_PTR)1 << cpu);
}

void bn_os_yield(void) { SwitchToThread(); }

long bn_os_pid(void) { return (long)GetCurrentProcessId(); }

int bn_os_process_alive(long pid) {
    HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)pid);
    if (!h) return GetLastError() == ERROR_INVALID_PARAMETER ? 0 : -1; /* no such process, or not ours */
    const DWORD w = WaitForSingleObject(h, 0);
    CloseHandle(h);
    return w == WAIT_TIMEOUT;
}

uint64_t bn_peak_rss_bytes(void) {
    PROCESS_MEMORY_COUNTERS pmc;
    return GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc) ? pmc.PeakWorkingSetSize : 0;
}
uint64_t bn_current_rss_bytes(void) {
    PROCESS_MEMORY_COUNTERS pmc;
    return GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc) ? pmc.WorkingSetSize : 0;
}

uint64_t bn_time_ns(void) {
    static LARGE_INTEGER freq; /* constant since boot: a benign race */
    LARGE_INTEGER t;
    if (!freq.QuadPart) QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    const uint64_t s = (uint64_t)(t.QuadPart / freq.QuadPart), r = (uint64_t)(t.QuadPart % freq.QuadPart);
    return s * 1000000000ull + r * 1000000000ull / (uint64_t)freq.QuadPart;
}

#endif
