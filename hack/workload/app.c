/*
 * The sample workload: stands in for an application that is slow to start and large in memory.
 *   APP_MEMORY_MB      memory to allocate and touch (default 64)
 *   APP_WARMUP_SECONDS seconds of CPU time spent before it is ready, like loading and JIT-compiling
 *                      (default 0). CPU time, not wall time: many copies warming up at once on a
 *                      small host take as long as they would for real.
 * Then it prints "ready" once and "counter N" every second. A restored copy continues the counter
 * where the checkpoint was taken and never prints the warm-up again; a cold start begins at 0.
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

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  long memory_mb = env_long("APP_MEMORY_MB", 64);
  long warmup_s = env_long("APP_WARMUP_SECONDS", 0);

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

  printf("ready\n");
  for (unsigned long counter = 0;; counter++) {
    printf("counter %lu\n", counter);
    sleep(1);
  }
}
