/* mount.h - the MOUNT protocol, version 3 (RFC 1813 appendix I), with the
 * version 1 procedures that showmount uses (DUMP, EXPORT, UMNT, UMNTALL). */
#ifndef RS_MOUNT_H
#define RS_MOUNT_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "rpc.h"

#define MOUNT_PROG 100005

#define MOUNTPROC3_NULL    0
#define MOUNTPROC3_MNT     1
#define MOUNTPROC3_DUMP    2
#define MOUNTPROC3_UMNT    3
#define MOUNTPROC3_UMNTALL 4
#define MOUNTPROC3_EXPORT  5

#define MNT3_OK             0
#define MNT3ERR_PERM        1
#define MNT3ERR_NOENT       2
#define MNT3ERR_IO          5
#define MNT3ERR_ACCES       13
#define MNT3ERR_NOTDIR      20
#define MNT3ERR_INVAL       22
#define MNT3ERR_NAMETOOLONG 63
#define MNT3ERR_NOTSUPP     10004
#define MNT3ERR_SERVERFAULT 10006

#define MNTPATHLEN 1024
#define MNTNAMLEN  255

extern const struct rpc_program mount_program;

/* The in-memory mount list (DUMP): what clients said they mounted. */
void mount_list_clear(void);
int mount_list_count(void);
void mount_list_show(FILE *out, bool json);

/* Normalise a MNT path: absolute, collapse "//" and ".", refuse "..",
 * strip a trailing '/'.  0 or -1. */
int mount_path_normalise(const char *in, char *out, size_t len);

#endif
