/*
 * A client of lab 09's ticket server, in C: it asks the server for a
 * ticket and prints the reply.
 *
 *     cc -Wall -Wextra -o client c/client.c -lrt
 *     ./client SERVER [REPLY [REQUEST]]
 *
 * SERVER is the server's queue (/tickets), REPLY the reply queue to create
 * (default SERVER.client.PID), REQUEST what to ask for (default "ticket").
 * Exit status: 0 with a ticket, 1 if anything failed (reported on stderr).
 *
 * It shares nothing with the Rust server but a queue's name and the wire
 * format below (src/protocol.rs): that the two talk at all shows that the
 * lab's queues are ordinary POSIX queues. The grading suite compiles this
 * file and runs it against your server (task 6).
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ANCHOR: wire */
#define REQUEST_MAX  512    /* mq_msgsize of the server's queue */
#define RESPONSE_MAX 256    /* mq_msgsize of a reply queue */

#define RESP_TICKET 1       /* response priority: "ticket N, served by pid P" */
#define RESP_ERROR  2       /* response priority: the request was refused */

/* A request is the text "WORD REPLY", without NUL or newline: a message
 * keeps its boundaries, so its length is all the framing it needs. */
/* ANCHOR_END: wire */

int main(int argc, char *argv[])
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s SERVER [REPLY [REQUEST]]\n", argv[0]);
        return 2;
    }
    const char *server_name = argv[1];
    char default_reply[300];
    snprintf(default_reply, sizeof default_reply, "%s.client.%ld", server_name, (long) getpid());
    const char *reply_name = argc > 2 ? argv[2] : default_reply;
    const char *word = argc > 3 ? argv[3] : "ticket";

    /* ANCHOR: client */
    /* Five seconds for the whole exchange: an absolute CLOCK_REALTIME time. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;

    mqd_t server = mq_open(server_name, O_WRONLY);
    if (server == (mqd_t) -1) {
        perror(errno == ENOENT ? "client: no server is listening" : "client: mq_open");
        return 1;
    }
    struct mq_attr attr = { .mq_maxmsg = 1, .mq_msgsize = RESPONSE_MAX };
    mqd_t reply = mq_open(reply_name, O_CREAT | O_EXCL | O_RDONLY, S_IRUSR | S_IWUSR, &attr);
    if (reply == (mqd_t) -1) {
        perror("client: mq_open(reply queue)");
        mq_close(server);
        return 1;
    }
    printf("client: reply queue %s\n", reply_name);
    fflush(stdout);

    int status = 1;
    char request[REQUEST_MAX + 1];
    int length = snprintf(request, sizeof request, "%s %s", word, reply_name);
    char response[RESPONSE_MAX + 1];
    unsigned priority;
    if (length < 0 || length > REQUEST_MAX) {
        fprintf(stderr, "client: the request is too long\n");
    } else if (mq_timedsend(server, request, (size_t) length, 0, &deadline) == -1) {
        perror("client: mq_timedsend");
    } else {
        ssize_t got = mq_timedreceive(reply, response, RESPONSE_MAX, &priority, &deadline);
        if (got == -1) {
            perror("client: mq_timedreceive");
        } else if (priority == RESP_TICKET) {
            printf("%.*s\n", (int) got, response);
            status = 0;
        } else {
            fprintf(stderr, "client: the server refused: %.*s\n", (int) got, response);
        }
    }
    /* Only we know the reply queue: unlink it on every path. */
    mq_close(reply);
    if (mq_unlink(reply_name) == -1) {
        perror("client: mq_unlink");
        status = 1;
    }
    mq_close(server);
    /* ANCHOR_END: client */
    return status;
}
