/* The sandbox ("pause") process of the real nodes of the cluster test tier: it holds a pod's
 * namespaces open, reaps the zombies of a pod that shares its PID namespace, and exits 0 on
 * SIGINT or SIGTERM. Built statically by tools/build-node.sh into a one-layer image. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) {
    (void)signo;
    _exit(0);
}

static void reap(int signo) {
    (void)signo;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("prs-pause 1");
        return 0;
    }
    if (getpid() != 1) {
        fputs("prs-pause: warning: not PID 1, zombies of others are not reaped\n", stderr);
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = stop;
    if (sigaction(SIGINT, &action, NULL) < 0 || sigaction(SIGTERM, &action, NULL) < 0) {
        perror("prs-pause: sigaction");
        return 1;
    }
    action.sa_handler = reap;
    action.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    if (sigaction(SIGCHLD, &action, NULL) < 0) {
        perror("prs-pause: sigaction");
        return 1;
    }
    for (;;) {
        pause();
    }
}
