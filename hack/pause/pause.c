// The pod sandbox's "pause" process for the test bed's kubelet (hack/cluster-up.sh), built locally
// because no registry is reachable: it holds the pod's namespaces open, reaps orphans (it is PID 1
// when the pod shares its PID namespace) and exits on SIGINT/SIGTERM.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, 0, WNOHANG) > 0) {
  }
}

int main(void) {
  signal(SIGINT, stop);
  signal(SIGTERM, stop);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
