/* portable.h - the few system calls the command-line tools make outside
 * libbitnet, for POSIX and for Windows (mingw-w64), header-only: the CPU
 * count, the process's resident memory, getline, whether two paths are one
 * file, and binary standard streams on Windows. The library's own system calls are in src/os.c. */
#ifndef BN_TOOLS_PORTABLE_H
#define BN_TOOLS_PORTABLE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#define PSAPI_VERSION 2 /* GetProcessMemoryInfo from kernel32 */
#include <windows.h>
#include <psapi.h>
#endif
#include <sys/stat.h>
#include <unistd.h> /* mingw-w64 has it too: isatty, read, write, close */

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
/* Standard streams in binary mode, before main: "\n" stays "\n" (the CRT
 * writes "\r\n" in its default text mode), so output is the same bytes as on
 * POSIX; the files the tools open are binary already (binmode.o, Makefile). */
__attribute__((constructor)) static void binary_stdio(void) {
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stderr), _O_BINARY);
}
#endif

/* Online CPUs (at least 1). */
static inline int online_cpus(void) {
#ifdef _WIN32
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n > 0 && n < 1 << 20 ? (int)n : 1;
}

/* A memory figure of this process in MiB, named by its /proc/self/status field
 * ("VmRSS:", "VmHWM:" the peak, "VmLck:" locked); -1 if unknown (on Windows,
 * only the first two are known: the working set and its peak). */
static inline double process_mib(const char *field) {
#ifdef _WIN32
    PROCESS_MEMORY_COUNTERS pmc;
    const int peak = strcmp(field, "VmHWM:") == 0;
    if ((!peak && strcmp(field, "VmRSS:") != 0) || !GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return -1.0;
    return (peak ? pmc.PeakWorkingSetSize : pmc.WorkingSetSize) / 1048576.0;
#else
    FILE *f = fopen("/proc/self/status", "r"); /* "VmHWM:   N kB" */
    if (!f) return -1.0;
    char line[256];
    double mib = -1.0;
    const size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) {
            mib = strtod(line + n, NULL) / 1024.0;
            break;
        }
    fclose(f);
    return mib;
#endif
}

/* 1 if paths A and B name the same existing file (also through links or
 * another spelling), else 0. Windows has no inode numbers in stat(): the
 * volume serial number and file index of an open handle tell there. */
static inline int same_file(const char *a, const char *b) {
    if (!a || !b) return 0;
    if (strcmp(a, b) == 0) return 1;
#ifdef _WIN32
    BY_HANDLE_FILE_INFORMATION ia, ib;
    HANDLE ha = CreateFileA(a, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                            FILE_FLAG_BACKUP_SEMANTICS, NULL); /* (BACKUP_SEMANTICS: directories open too) */
    HANDLE hb = CreateFileA(b, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                            FILE_FLAG_BACKUP_SEMANTICS, NULL);
    const int same = ha != INVALID_HANDLE_VALUE && hb != INVALID_HANDLE_VALUE && GetFileInformationByHandle(ha, &ia) &&
                     GetFileInformationByHandle(hb, &ib) && ia.dwVolumeSerialNumber == ib.dwVolumeSerialNumber &&
                     ia.nFileIndexHigh == ib.nFileIndexHigh && ia.nFileIndexLow == ib.nFileIndexLow;
    if (ha != INVALID_HANDLE_VALUE) CloseHandle(ha);
    if (hb != INVALID_HANDLE_VALUE) CloseHandle(hb);
    return same;
#else
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
#endif
}

/* One line of F with its newline into *line (grown as getline(3) does); its
 * length, or -1 at EOF or on an error. */
static inline ssize_t read_line(char **line, size_t *cap, FILE *f) {
#ifdef _WIN32
    size_t n = 0;
    for (int c; (c = fgetc(f)) != EOF;) {
        if (n + 2 > *cap) {
            size_t nc = *cap ? *cap * 2 : 128;
            char *nl = realloc(*line, nc);
            if (!nl) return -1;
            *line = nl;
            *cap = nc;
        }
        (*line)[n++] = (char)c;
        if (c == '\n') break;
    }
    if (n == 0) return -1;
    (*line)[n] = 0;
    return (ssize_t)n;
#else
    return getline(line, cap, f);
#endif
}

#endif
