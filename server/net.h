/* net.h - the socket calls of build/server, for POSIX and for Winsock (net.c).
 *
 * The two differ in small ways that would otherwise scatter #ifdefs through
 * main.c: a socket is an int or a SOCKET, closed with close() or closesocket();
 * poll() is WSAPoll(); errors are in errno or WSAGetLastError(); a write to a
 * closed peer raises SIGPIPE on POSIX only; the accept loop's wake-up channel
 * (written from a signal handler and the loading thread) is a pipe on POSIX and
 * a loopback socket pair on Windows, where poll cannot wait on a pipe. */
#ifndef BN_SERVER_NET_H
#define BN_SERVER_NET_H

#include <stddef.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET bn_socket;
#define BN_NO_SOCKET INVALID_SOCKET
#define POLLRDHUP 0     /* WSAPoll reports a peer's close as POLLHUP */
#define MSG_NOSIGNAL 0  /* no SIGPIPE on Windows */
#define SHUT_WR SD_SEND
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
typedef int bn_socket;
#define BN_NO_SOCKET (-1)
#endif

/* Once at start: Winsock's WSAStartup; SIGPIPE ignored on POSIX. 0 on success. */
int net_start(void);
void net_close(bn_socket s);
int net_poll(struct pollfd *p, unsigned n, int timeout_ms);
/* The last socket call failed only for now: interrupted by a signal (net_interrupted),
 * or that and would block / timed out (net_retry). */
int net_interrupted(void);
int net_retry(void);
/* The last socket call's error, as text. */
const char *net_error(void);
/* A TCP socket of FAMILY, not inherited by child processes. */
bn_socket net_socket(int family);
bn_socket net_accept(bn_socket lfd, struct sockaddr_storage *ss);
void net_set_nonblocking(bn_socket s, int on);
/* send() gives up after SECONDS on a client that does not read. */
void net_set_send_timeout(bn_socket s, int seconds);
/* At most n bytes without waiting (0: the peer closed, -1: nothing now or an error). */
long net_recv_now(bn_socket s, void *buf, size_t n, int peek);

/* The wake-up channel: wake[0] is polled, net_wake writes one byte to wake[1]
 * (safe in a signal handler), net_wake_drain empties wake[0]. */
int net_wake_open(bn_socket wake[2]);
void net_wake(bn_socket w);
void net_wake_drain(bn_socket r);

#endif
