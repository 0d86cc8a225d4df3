/*
 * The course notes' message queue client, in C, made complete: it asks the
 * ticket server of lab 05 for a ticket and prints the reply.
 *
 *     cc -Wall -Wextra -o client c/client.c
 *     ./client KEY_FILE [PROJ_ID [REQUEST_TYPE]]
 *
 * Exit status: 0 with a ticket, 1 if anything failed (reported on stderr).
 *
 * It shares nothing with the Rust server but the wire format below, copied
 * from the notes: that the two talk at all shows the format is the whole
 * contract. The grading suite compiles this file and runs it against your
 * server (task 5).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ANCHOR: wire */
#define RESP_MSG_SIZE 1024
#define REQ_MSG_SIZE  sizeof(int)   /* msgsz counts the bytes after mtype */

#define REQ_TICKET  1               /* request: give me a ticket */
#define RESP_TICKET 1               /* response: here it is */
#define RESP_ERROR  2               /* response: refused, data says why */

struct Request {
    long mtype;                     /* what is asked; at least 1 */
    int client_mq_id;               /* where to send the answer */
};

struct Response {
    long mtype;                     /* RESP_TICKET or RESP_ERROR */
    char data[RESP_MSG_SIZE];       /* NUL-terminated text */
};
/* ANCHOR_END: wire */

int main(int argc, char *argv[])
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s KEY_FILE [PROJ_ID [REQUEST_TYPE]]\n", argv[0]);
        return 2;
    }
    int proj_id = argc > 2 ? atoi(argv[2]) : 1;
    long request_type = argc > 3 ? atol(argv[3]) : REQ_TICKET;

    /* ANCHOR: client */
    key_t server_key = ftok(argv[1], proj_id);
    if (server_key == -1) {
        perror("client: ftok");
        return 1;
    }
    /* Open the server's queue, asking for write permission only. */
    int server_mq_id = msgget(server_key, S_IWUSR);
    if (server_mq_id == -1) {
        perror(errno == ENOENT ? "client: no server is listening" : "client: msgget");
        return 1;
    }
    /* Our private reply queue. The notes add S_IWGRP, so that a server
     * running as another user of our group may answer; this course keeps
     * 0600: only we, and a server running as us, can use it. */
    int client_mq_id = msgget(IPC_PRIVATE, S_IRUSR | S_IWUSR);
    if (client_mq_id == -1) {
        perror("client: msgget(IPC_PRIVATE)");
        return 1;
    }
    printf("client: private queue %d\n", client_mq_id);
    fflush(stdout);

    int status = 1;
    struct Request req = { .mtype = request_type, .client_mq_id = client_mq_id };
    struct Response res;
    if (msgsnd(server_mq_id, &req, REQ_MSG_SIZE, 0) == -1) {
        perror("client: msgsnd");
    } else {
        ssize_t len = msgrcv(client_mq_id, &res, RESP_MSG_SIZE, 0, 0);
        if (len == -1) {
            perror("client: msgrcv");
        } else if (res.mtype == RESP_TICKET) {
            printf("%.*s\n", (int) strnlen(res.data, (size_t) len), res.data);
            status = 0;
        } else {
            fprintf(stderr, "client: the server refused: %.*s\n",
                    (int) strnlen(res.data, (size_t) len), res.data);
        }
    }
    /* Nobody else knows this queue: remove it on every path. */
    if (msgctl(client_mq_id, IPC_RMID, NULL) == -1) {
        perror("client: msgctl(IPC_RMID)");
        status = 1;
    }
    /* ANCHOR_END: client */
    return status;
}
