/* control.h - the control socket (AF_UNIX, mode 0600) that ringstoradm talks to.
 * Runs in its own thread: the control plane may block, the data path never does. */
#ifndef RS_CONTROL_H
#define RS_CONTROL_H

#include <stddef.h>
#include <stdio.h>

/* Create the socket at path (removing a stale one) and start serving.
 * 0 or -errno with a logged reason. */
int control_start(const char *path);
void control_stop(void);

/* ---- additions ---- */
struct ctl_request;
/* Carry out one decoded request (the control thread's work, exposed for
 * tests): writes the body to `body`, a one-line message to msg, and returns
 * 0 or a positive errno (EINVAL, ENOENT, EEXIST, EBUSY ...). */
int control_execute(const struct ctl_request *req, FILE *body, char *msg, size_t msglen);

#endif
