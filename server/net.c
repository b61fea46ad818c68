/* net.c - see net.h: POSIX first, then Winsock. */
#include "net.h"

#include <errno.h>
#include <string.h>

#ifndef _WIN32 /* ---------------------------------------------------------------- POSIX */

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

int net_start(void) {
    signal(SIGPIPE, SIG_IGN); /* a client that went away is an error from send(), not a signal */
    return 0;
}

void net_close(bn_socket s) { close(s); }
int net_poll(struct pollfd *p, unsigned n, int timeout_ms) { return poll(p, (nfds_t)n, timeout_ms); }
int net_interrupted(void) { return errno == EINTR; }
int net_retry(void) { return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK; }
const char *net_error(void) { return strerror(errno); }
bn_socket net_socket(int family) { return socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0); }

bn_socket net_accept(bn_socket lfd, struct sockaddr_storage *ss) {
    socklen_t sl = sizeof *ss;
    return accept4(lfd, (struct sockaddr *)ss, &sl, SOCK_CLOEXEC);
}

void net_set_nonblocking(bn_socket s, int on) {
    const int fl = fcntl(s, F_GETFL);
    fcntl(s, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

void net_set_send_timeout(bn_socket s, int seconds) {
    struct timeval tv = {seconds, 0};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

long net_recv_now(bn_socket s, void *buf, size_t n, int peek) {
    return (long)recv(s, buf, n, MSG_DONTWAIT | (peek ? MSG_PEEK : 0));
}

int net_wake_open(bn_socket wake[2]) { return pipe2(wake, O_CLOEXEC | O_NONBLOCK); }

void net_wake(bn_socket w) {
    const ssize_t r = write(w, "x", 1); /* full pipe: a wake-up is pending anyway */
    (void)r;
}

void net_wake_drain(bn_socket r) {
    char b[64];
    while (read(r, b, sizeof b) > 0) {}
}

#else /* ----------------------------------------------------------------------- Winsock */

#include <stdio.h>

int net_start(void) {
    WSADATA w;
    return WSAStartup(MAKEWORD(2, 2), &w);
}

void net_close(bn_socket s) { closesocket(s); }
int net_poll(struct pollfd *p, unsigned n, int timeout_ms) { return WSAPoll(p, n, timeout_ms); }

int net_interrupted(void) { return WSAGetLastError() == WSAEINTR; }

int net_retry(void) {
    const int e = WSAGetLastError();
    return e == WSAEINTR || e == WSAEWOULDBLOCK;
}

const char *net_error(void) {
    static __thread char msg[256];
    const int e = WSAGetLastError();
    if (!FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, (DWORD)e, 0, msg, sizeof msg,
                        NULL))
        snprintf(msg, sizeof msg, "Winsock error %d", e);
    msg[strcspn(msg, "\r\n")] = 0;
    return msg;
}

bn_socket net_socket(int family) {
    return WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

bn_socket net_accept(bn_socket lfd, struct sockaddr_storage *ss) {
    int sl = sizeof *ss;
    return accept(lfd, (struct sockaddr *)ss, &sl);
}

void net_set_nonblocking(bn_socket s, int on) {
    u_long v = (u_long)on;
    ioctlsocket(s, FIONBIO, &v);
}

void net_set_send_timeout(bn_socket s, int seconds) {
    const DWORD ms = (DWORD)seconds * 1000;
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, (const char *)&ms, sizeof ms);
}

/* No MSG_DONTWAIT: ask poll first, then recv does not wait. */
long net_recv_now(bn_socket s, void *buf, size_t n, int peek) {
    struct pollfd p = {s, POLLIN, 0};
    if (WSAPoll(&p, 1, 0) <= 0) {
        WSASetLastError(WSAEWOULDBLOCK);
        return -1;
    }
    return recv(s, buf, (int)n, peek ? MSG_PEEK : 0);
}

/* A connected loopback pair: listen on 127.0.0.1, an ephemeral port, connect, accept. */
int net_wake_open(bn_socket wake[2]) {
    struct sockaddr_in a = {0};
    int len = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bn_socket l = net_socket(AF_INET);
    wake[0] = wake[1] = BN_NO_SOCKET;
    if (l == BN_NO_SOCKET) return -1;
    if (bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 &&
        getsockname(l, (struct sockaddr *)&a, &len) == 0 && (wake[1] = net_socket(AF_INET)) != BN_NO_SOCKET &&
        connect(wake[1], (struct sockaddr *)&a, sizeof a) == 0)
        wake[0] = accept(l, NULL, NULL);
    closesocket(l);
    if (wake[0] == BN_NO_SOCKET) {
        if (wake[1] != BN_NO_SOCKET) closesocket(wake[1]);
        return -1;
    }
    net_set_nonblocking(wake[0], 1);
    net_set_nonblocking(wake[1], 1);
    return 0;
}

void net_wake(bn_socket w) { send(w, "x", 1, 0); }

void net_wake_drain(bn_socket r) {
    char b[64];
    while (recv(r, b, sizeof b, 0) > 0) {}
}

#endif
