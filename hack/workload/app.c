/*
 * The sample workload: stands in for an application that is slow to start and large in memory.
 *   APP_MEMORY_MB      memory to allocate and touch (default 64)
 *   APP_WARMUP_SECONDS seconds of CPU time spent before it is ready, like loading and JIT-compiling
 *                      (default 0). CPU time, not wall time: many copies warming up at once on a
 *                      small host take as long as they would for real.
 *   APP_HTTP_PORT      TCP port of its HTTP endpoint (default 0: none)
 * Then it prints "ready" once and "counter N" every second. A restored copy continues the counter
 * where the checkpoint was taken and never prints the warm-up again; a cold start begins at 0.
 * HTTP: any GET answers "counter N\n" (the current value) and closes the connection. The counter
 * ticks in the same poll() loop that serves requests: one thread, nothing to lock.
 *
 * Checkpointing a server (docs/serving.md): CRIU 4.1 cannot dump any TCP socket on Linux >= 6.16
 * ("Can't get 1:16 opt", criu issue 2718) and Docker never restores established connections, so the
 * server is checkpointed QUIESCENT, the way CRaC does it:
 *   SIGUSR1            close the listening socket and print "quiesced" (then: docker checkpoint create)
 *   SIGUSR2            the after-restore step: listen again, print "after-restore N" (N counts them)
 *   /app post-restore  sends SIGUSR2 to PID 1: the command for spec.template.postRestore.exec
 * The default port is 0 so that plain checkpoints of the workload keep working on such kernels.
 * SIGTERM and SIGINT end it at once with status 0: as PID 1 in its container it would otherwise
 * ignore them (the kernel drops default-action signals to a namespace's init), and every stop
 * would wait out Docker's whole grace period before the SIGKILL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>

static long env_long(const char *name, long fallback) {
  const char *v = getenv(name);
  if (v == NULL || *v == '\0') return fallback;
  char *end;
  long n = strtol(v, &end, 10);
  if (*end != '\0' || n < 0) {
    fprintf(stderr, "invalid %s=%s: want a whole number >= 0\n", name, v);
    exit(2);
  }
  return n;
}

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

/* Set by the signal handlers, acted on in the main loop (where it is safe to touch sockets). */
static volatile sig_atomic_t quiesce_requested, resume_requested;
static void on_quiesce(int sig) { (void)sig; quiesce_requested = 1; }
static void on_resume(int sig) { (void)sig; resume_requested = 1; }

/* A listening IPv4 socket on every address, or -1 with the reason on stderr. */
static int listen_on(long port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons((unsigned short)port);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 64) < 0) {
    fprintf(stderr, "cannot listen on port %ld: %s\n", port, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* One request: read what arrives (a GET fits one read), answer, close. A client that sends nothing
 * within a second gets no answer: the loop must keep ticking. */
static void serve_one(int listener, unsigned long counter) {
  int fd = accept(listener, NULL, NULL);
  if (fd < 0) return;
  struct pollfd p = {fd, POLLIN, 0};
  char request[2048];
  if (poll(&p, 1, 1000) == 1 && read(fd, request, sizeof request) > 0) {
    char body[64], reply[256];
    int body_len = snprintf(body, sizeof body, "counter %lu\n", counter);
    int len = snprintf(reply, sizeof reply,
                       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                       body_len, body);
    if (write(fd, reply, (size_t)len) < 0) { /* the client left: nothing to do */ }
  }
  close(fd);
}

static double wall_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* `/app post-restore`: run by `docker exec` in the restored container; PID 1 there is the server. */
static int post_restore(void) {
  if (kill(1, SIGUSR2) != 0) {
    fprintf(stderr, "post-restore: cannot signal PID 1: %s\n", strerror(errno));
    return 1;
  }
  printf("post-restore: signalled the server\n");
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && strcmp(argv[1], "post-restore") == 0) return post_restore();
  if (argc > 1) {
    fprintf(stderr, "unknown argument %s: want none or post-restore\n", argv[1]);
    return 2;
  }
  signal(SIGTERM, on_stop);
  /* A client (a probe, a test) that closes before the answer is written must not kill the server:
     by default a write to a closed socket raises SIGPIPE, which ends the process. */
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, on_stop);
  signal(SIGUSR1, on_quiesce);
  signal(SIGUSR2, on_resume);
  long memory_mb = env_long("APP_MEMORY_MB", 64);
  long warmup_s = env_long("APP_WARMUP_SECONDS", 0);
  long http_port = env_long("APP_HTTP_PORT", 0);
  if (http_port > 65535) {
    fprintf(stderr, "invalid APP_HTTP_PORT=%ld: want 0 (off) or a port 1-65535\n", http_port);
    return 2;
  }

  size_t bytes = (size_t)memory_mb << 20;
  unsigned char *heap = bytes ? malloc(bytes) : NULL;
  if (bytes && heap == NULL) {
    fprintf(stderr, "cannot allocate %ld MB\n", memory_mb);
    return 1;
  }
  /* Touch every page with varying bytes so the checkpoint really holds the memory. */
  for (size_t i = 0; i < bytes; i += 4096) heap[i] = (unsigned char)(i >> 12);
  printf("allocated %ld MB\n", memory_mb);

  if (warmup_s > 0) {
    printf("warming up for %ld s\n", warmup_s);
    double until = cpu_seconds() + (double)warmup_s;
    unsigned long long h = 1469598103934665603ULL;
    while (cpu_seconds() < until)
      for (int k = 0; k < 1000000; k++) h = (h ^ (unsigned long long)k) * 1099511628211ULL;
    printf("warm-up done (%llx)\n", h & 0xffff);
  }

  /* Listen before "ready": whoever waits for "ready" may connect at once. */
  int listener = http_port ? listen_on(http_port) : -1;
  if (http_port && listener < 0) return 1;
  if (listener >= 0) printf("listening on port %ld\n", http_port);
  printf("ready\n");
  /* The counter ticks once a second of wall time whatever the requests do. CLOCK_MONOTONIC jumps
   * forward across a checkpoint/restore gap: then it ticks once and starts a fresh second, so a
   * restored copy continues with the next number instead of a burst for the missed seconds. */
  unsigned long counter = 0, restores = 0;
  printf("counter %lu\n", counter);
  double next_tick = wall_seconds() + 1;
  for (;;) {
    if (quiesce_requested) {
      quiesce_requested = 0;
      if (listener >= 0) close(listener);
      listener = -1;
      printf("quiesced\n");
    }
    if (resume_requested) {
      resume_requested = 0;
      restores++;
      if (http_port && listener < 0 && (listener = listen_on(http_port)) < 0) return 1;
      printf("after-restore %lu\n", restores);
    }
    double wait = next_tick - wall_seconds();
    if (wait <= 0) {
      counter++;
      printf("counter %lu\n", counter);
      next_tick = (wait < -1 ? wall_seconds() : next_tick) + 1;
      continue;
    }
    if (listener < 0) {
      usleep((useconds_t)(wait * 1e6));
      continue;
    }
    struct pollfd p = {listener, POLLIN, 0};
    /* A signal interrupts poll (EINTR): the loop then handles it at once. */
    if (poll(&p, 1, (int)(wait * 1000) + 1) == 1) serve_one(listener, counter);
  }
}
