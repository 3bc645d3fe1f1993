/*
 * LD_PRELOAD shim for the benchmarks: makes fsync(2) and fdatasync(2) on the
 * files under one directory slower, as on a Raspberry Pi's SD card.
 *
 *   KIOSK_FSYNC_DELAY_MS      extra milliseconds per call (0 or unset: no delay)
 *   KIOSK_FSYNC_DELAY_PREFIX  directory whose files (and itself) are delayed
 *
 * The descriptor's path comes from readlink(/proc/self/fd/N); every other file
 * (the reference backend's database, for one) is synced at full speed. The
 * real function is found with dlsym(RTLD_NEXT) and always called after the
 * delay. Both variables are read on every call, so a process may set the
 * prefix after it started (before its first sync).
 *
 * Built by bench/_fsync.py: cc -shared -fPIC -O2 -o fsync_delay.so fsync_delay.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

static int under_prefix(int fd)
{
    const char *prefix = getenv("KIOSK_FSYNC_DELAY_PREFIX");
    if (prefix == NULL || prefix[0] == '\0')
        return 0;
    char link[64];
    char path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return 0;
    path[n] = '\0';
    size_t len = strlen(prefix);
    while (len > 1 && prefix[len - 1] == '/')
        len--;
    return strncmp(path, prefix, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

static void delay_for(int fd)
{
    const char *ms = getenv("KIOSK_FSYNC_DELAY_MS");
    if (ms == NULL)
        return;
    long millis = strtol(ms, NULL, 10);
    if (millis <= 0 || !under_prefix(fd))
        return;
    struct timespec left = {millis / 1000, (millis % 1000) * 1000000L};
    int saved = errno;
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
    errno = saved;
}

int fsync(int fd)
{
    static sync_fn real;
    if (real == NULL)
        real = (sync_fn)dlsym(RTLD_NEXT, "fsync");
    delay_for(fd);
    return real(fd);
}

int fdatasync(int fd)
{
    static sync_fn real;
    if (real == NULL)
        real = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
    delay_for(fd);
    return real(fd);
}
