/* LabDeck's hello-world: what `docker run hello-world` prints inside a sandbox. */
#include <stdio.h>

static const char message[] =
    "\n"
    "Hello from LabDeck!\n"
    "This message shows that your Docker engine is working.\n"
    "\n"
    "What just happened:\n"
    " 1. The docker command (the client) asked your Docker engine (the daemon) to run\n"
    "    the image \"hello-world\".\n"
    " 2. The engine found the image in its local store (or pulled it from a registry).\n"
    " 3. The engine created a new container from that image and started the program\n"
    "    inside it: a tiny static binary that printed this text.\n"
    " 4. The engine streamed the program's output to the docker command, which\n"
    "    showed it in your terminal. Then the program exited, and so did the container.\n"
    "\n"
    "Try something more ambitious next:\n"
    "  docker run -it busybox sh\n"
    "  docker ps -a\n"
    "\n";

int main(void) {
    fputs(message, stdout);
    return 0;
}
