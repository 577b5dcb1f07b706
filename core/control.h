/* control.h - the control socket (AF_UNIX, mode 0600) that ringstoradm talks to.
 * Runs in its own thread: the control plane may block, the data path never does. */
#ifndef RS_CONTROL_H
#define RS_CONTROL_H

/* Create the socket at path (removing a stale one) and start serving.
 * 0 or -errno with a logged reason. */
int control_start(const char *path);
void control_stop(void);

#endif
