/* Unit tests for nfsgw/nfs3.c (+ fsops.c): XDR round trips through the NFSv3
 * dispatcher with a fake rpc_call on a real reactor and workpool.  Arguments
 * are encoded with libnfs's zdr_*3args encoders, replies decoded with its
 * zdr_*3res decoders.  The RPC transport is replaced by the rpc_reply_*
 * stubs below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nfsc/libnfs-zdr.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "core/reactor.h"
#include "core/workpool.h"
#include "nfsgw/exports.h"
#include "nfsgw/fh.h"
#include "nfsgw/fsops.h"
#include "nfsgw/nfs3.h"
#include "nfsgw/rpc.h"
#include "nfsgw/xdr.h"

/* ------------------------------------------------------ transport stubs */

static struct {
	uint8_t *buf;
	size_t len;
	int accept_err;         /* -1: none */
	int auth_err;
	bool done;
} rep;

static uint8_t *reply_room;
static size_t reply_room_len;
static struct reactor R;

uint8_t *rpc_reply_buf(struct rpc_call *call, size_t max_len)
{
	(void)call;
	free(reply_room);
	reply_room = calloc(1, max_len + 1);
	reply_room_len = max_len;
	return reply_room;
}

static pthread_mutex_t rep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rep_cond = PTHREAD_COND_INITIALIZER;

static void finish(void)
{
	pthread_mutex_lock(&rep_lock);
	rep.done = true;
	pthread_cond_signal(&rep_cond);
	pthread_mutex_unlock(&rep_lock);
}

void rpc_reply_send(struct rpc_call *call, size_t len, const void *payload, size_t payload_len,
		    void (*payload_done)(void *arg), void *payload_arg)
{
	size_t pad = (4 - payload_len % 4) % 4;
	(void)call;
	assert_true(len <= reply_room_len);
	free(rep.buf);
	rep.buf = calloc(1, len + payload_len + pad + 16);
	memcpy(rep.buf, reply_room, len);
	if (payload_len)
		memcpy(rep.buf + len, payload, payload_len);
	rep.len = len + payload_len + pad;
	if (payload_done)
		payload_done(payload_arg);
	finish();
}

void rpc_reply_accept_error(struct rpc_call *call, uint32_t accept_stat)
{
	(void)call;
	rep.accept_err = (int)accept_stat;
	finish();
}

void rpc_reply_auth_error(struct rpc_call *call, uint32_t auth_stat)
{
	(void)call;
	rep.auth_err = (int)auth_stat;
	finish();
}

void rpc_call_drop(struct rpc_call *call)
{
	(void)call;
	finish();
}

/* --------------------------------------------------------------- harness */

static char tdir[256];           /* export root */
static char ro_dir[300], sq_dir[300];
static uint32_t eid, ro_eid, sq_eid;
static struct nfs_fh root_fh, ro_root_fh, sq_root_fh;
static uint8_t argbuf[2 * 1024 * 1024];
static uint32_t arglen;
static struct rpc_call the_call;
static uint32_t cur_uid, cur_gid;
static uint16_t cur_port = 700;
static ZDR dz;
static bool dz_live;

static pthread_t reactor_thread;

static void dispatch_task(void *arg)
{
	struct rpc_call *c = arg;
	nfs3_program.dispatch(c);
}

static void *reactor_main(void *arg)
{
	(void)arg;
	reactor_run(&R);
	return NULL;
}

/* Run the prepared the_call on the reactor thread and wait for its reply. */
static void run_prepared(void)
{
	struct timespec ts;

	rep.done = false;
	rep.accept_err = -1;
	rep.auth_err = -1;
	rep.len = 0;
	assert_int_equal(reactor_post(&R, dispatch_task, &the_call), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&rep_lock);
	while (!rep.done)
		if (pthread_cond_timedwait(&rep_cond, &rep_lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&rep_lock);
	assert_true(rep.done);
}

static void run_call(uint32_t proc)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&the_call.peer;

	memset(&the_call, 0, sizeof(the_call));
	the_call.xid = 1;
	the_call.prog = NFS3_PROGRAM;
	the_call.vers = 3;
	the_call.proc = proc;
	the_call.auth.flavor = RPC_AUTH_SYS;
	the_call.auth.uid = cur_uid;
	the_call.auth.gid = cur_gid;
	the_call.args = argbuf;
	the_call.args_len = arglen;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(cur_port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	the_call.peerlen = sizeof(*sin);
	the_call.r = &R;
	run_prepared();
}

#define ENC(fn, argp) do {                                                      \
	ZDR z_;                                                                 \
	zdrmem_create(&z_, (caddr_t)argbuf, sizeof(argbuf), ZDR_ENCODE);        \
	assert_true(fn(&z_, argp));                                             \
	arglen = zdr_getpos(&z_);                                               \
	zdr_destroy(&z_);                                                       \
} while (0)

#define DEC(fn, resp) do {                                                      \
	assert_int_equal(rep.accept_err, -1);                                   \
	if (dz_live)                                                            \
		zdr_destroy(&dz);                                               \
	memset((resp), 0, sizeof(*(resp)));                                     \
	zdrmem_create(&dz, (caddr_t)rep.buf, (uint32_t)rep.len, ZDR_DECODE);    \
	dz_live = true;                                                         \
	assert_true(fn(&dz, resp));                                             \
	assert_int_equal(zdr_getpos(&dz), rep.len);                             \
} while (0)

static void fh3(nfs_fh3 *o, const struct nfs_fh *fh)
{
	o->data.data_len = fh->len;
	o->data.data_val = (char *)fh->data;
}

static void fh_from3(struct nfs_fh *o, const nfs_fh3 *in)
{
	assert_true(in->data.data_len <= NFS_FH_MAX);
	o->len = (uint8_t)in->data.data_len;
	memcpy(o->data, in->data.data_val, o->len);
}

static int add_export(const char *line, const char *path, uint32_t *id)
{
	char p[4096], err[256];
	struct export_client *cl = NULL;
	int ncl = 0;
	struct nfs_export *e;

	if (exports_parse_line(line, p, sizeof(p), &cl, &ncl, err, sizeof(err)) < 0) {
		fprintf(stderr, "parse: %s\n", err);
		return -1;
	}
	if (nfs_export_add(p, cl, ncl, err, sizeof(err)) < 0) {
		fprintf(stderr, "add: %s\n", err);
		return -1;
	}
	free(cl);
	e = nfs_export_get_by_path(path);
	if (!e)
		return -1;
	*id = e->id;
	nfs_export_put(e);
	return 0;
}

static int setup(void **state)
{
	static const uint8_t key[32] = { 9, 8, 7 };
	char line[1024];
	struct nfs_export *e;
	(void)state;

	snprintf(tdir, sizeof(tdir), "/tmp/rs-nfs3-XXXXXX");
	if (!mkdtemp(tdir))
		return -1;
	chmod(tdir, 0755);
	snprintf(ro_dir, sizeof(ro_dir), "%s-ro", tdir);
	if (mkdir(ro_dir, 0755) < 0)
		return -1;
	fh_secret_set(key);
	if (workpool_init(2) < 0 || reactor_init(&R, 0, 256) < 0)
		return -1;
	snprintf(line, sizeof(line), "%s 127.0.0.1(rw,no_root_squash,insecure) *(ro)", tdir);
	if (add_export(line, tdir, &eid) < 0)
		return -1;
	snprintf(line, sizeof(line), "%s *(ro,insecure)", ro_dir);
	if (add_export(line, ro_dir, &ro_eid) < 0)
		return -1;
	/* root_squash (default), secure (default), anonuid/anongid */
	snprintf(sq_dir, sizeof(sq_dir), "%s-sq", tdir);
	if (mkdir(sq_dir, 0777) < 0 || chmod(sq_dir, 0777) < 0)
		return -1;
	snprintf(line, sizeof(line), "%s *(rw,anonuid=4242,anongid=4243)", sq_dir);
	if (add_export(line, sq_dir, &sq_eid) < 0)
		return -1;
	e = nfs_export_get_by_id(sq_eid);
	if (!e || fh_make(sq_eid, e->root_fd, "", &sq_root_fh) < 0)
		return -1;
	nfs_export_put(e);
	e = nfs_export_get_by_id(eid);
	if (!e || fh_make(eid, e->root_fd, "", &root_fh) < 0)
		return -1;
	nfs_export_put(e);
	e = nfs_export_get_by_id(ro_eid);
	if (!e || fh_make(ro_eid, e->root_fd, "", &ro_root_fh) < 0)
		return -1;
	nfs_export_put(e);
	if (pthread_create(&reactor_thread, NULL, reactor_main, NULL) != 0)
		return -1;
	return 0;
}

static void fini_task(void *arg)
{
	(void)arg;
	nfs3_reactor_fini();
	reactor_stop(&R);
}

static int teardown(void **state)
{
	char cmd[1000];
	(void)state;
	if (dz_live)
		zdr_destroy(&dz);
	reactor_post(&R, fini_task, NULL);
	pthread_join(reactor_thread, NULL);
	nfs_exports_clear();
	reactor_fini(&R);
	workpool_shutdown();
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s %s", tdir, ro_dir, sq_dir);
	free(rep.buf);
	free(reply_room);
	return system(cmd) == 0 ? 0 : -1;
}

static int reset_creds(void **state)
{
	(void)state;
	cur_uid = 0;
	cur_gid = 0;
	cur_port = 700;
	nfs3_inline_statx = 0;
	return 0;
}

/* ---------------------------------------------------------- call helpers */

static uint32_t do_getattr(const struct nfs_fh *fh, fattr3 *out)
{
	GETATTR3args a;
	GETATTR3res res;

	fh3(&a.object, fh);
	ENC(zdr_GETATTR3args, &a);
	run_call(1);
	DEC(zdr_GETATTR3res, &res);
	if (res.status == NFS3_OK && out)
		*out = res.GETATTR3res_u.resok.obj_attributes;
	return res.status;
}

static uint32_t do_lookup(const struct nfs_fh *dir, const char *name, struct nfs_fh *out)
{
	LOOKUP3args a;
	LOOKUP3res res;

	fh3(&a.what.dir, dir);
	a.what.name = (char *)name;
	ENC(zdr_LOOKUP3args, &a);
	run_call(3);
	DEC(zdr_LOOKUP3res, &res);
	if (res.status == NFS3_OK) {
		assert_true(res.LOOKUP3res_u.resok.obj_attributes.attributes_follow);
		if (out)
			fh_from3(out, &res.LOOKUP3res_u.resok.object);
	} else {
		assert_true(res.LOOKUP3res_u.resfail.dir_attributes.attributes_follow ||
			    res.status == NFS3ERR_BADHANDLE || res.status == NFS3ERR_STALE ||
			    res.status == NFS3ERR_ACCES || res.status == NFS3ERR_PERM);
	}
	return res.status;
}

static uint32_t do_create(const struct nfs_fh *dir, const char *name, createmode3 mode,
			  int fmode, const char *verf, struct nfs_fh *out)
{
	CREATE3args a;
	CREATE3res res;

	memset(&a, 0, sizeof(a));
	fh3(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.how.mode = mode;
	if (mode == EXCLUSIVE) {
		memcpy(a.how.createhow3_u.verf, verf, 8);
	} else if (fmode >= 0) {
		a.how.createhow3_u.obj_attributes.mode.set_it = 1;
		a.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = (mode3)fmode;
	}
	ENC(zdr_CREATE3args, &a);
	run_call(8);
	DEC(zdr_CREATE3res, &res);
	if (res.status == NFS3_OK) {
		CREATE3resok *ok = &res.CREATE3res_u.resok;
		assert_true(ok->obj.handle_follows);
		assert_true(ok->obj_attributes.attributes_follow);
		/* WCC data on every modifying call (RFC 1813 2.6) */
		assert_true(ok->dir_wcc.before.attributes_follow);
		assert_true(ok->dir_wcc.after.attributes_follow);
		if (out)
			fh_from3(out, &ok->obj.post_op_fh3_u.handle);
	}
	return res.status;
}

static uint32_t do_write(const struct nfs_fh *fh, uint64_t off, const void *data, uint32_t n,
			 stable_how how, WRITE3resok *out)
{
	WRITE3args a;
	WRITE3res res;

	fh3(&a.file, fh);
	a.offset = off;
	a.count = n;
	a.stable = how;
	a.data.data_len = n;
	a.data.data_val = (char *)data;
	ENC(zdr_WRITE3args, &a);
	run_call(7);
	DEC(zdr_WRITE3res, &res);
	if (res.status == NFS3_OK && out)
		*out = res.WRITE3res_u.resok;
	return res.status;
}

static uint32_t do_read(const struct nfs_fh *fh, uint64_t off, uint32_t n, void *buf,
			uint32_t *got, bool *eof)
{
	READ3args a;
	READ3res res;

	fh3(&a.file, fh);
	a.offset = off;
	a.count = n;
	ENC(zdr_READ3args, &a);
	run_call(6);
	DEC(zdr_READ3res, &res);
	if (res.status == NFS3_OK) {
		READ3resok *ok = &res.READ3res_u.resok;
		assert_int_equal(ok->count, ok->data.data_len);
		assert_true(ok->file_attributes.attributes_follow);
		*got = ok->count;
		*eof = ok->eof;
		if (ok->count)
			memcpy(buf, ok->data.data_val, ok->count);
	}
	return res.status;
}

static uint32_t do_remove(const struct nfs_fh *dir, const char *name, uint32_t proc)
{
	REMOVE3args a;
	REMOVE3res res;

	fh3(&a.object.dir, dir);
	a.object.name = (char *)name;
	ENC(zdr_REMOVE3args, &a);
	run_call(proc);
	DEC(zdr_REMOVE3res, &res);
	if (res.status == NFS3_OK)
		assert_true(res.REMOVE3res_u.resok.dir_wcc.after.attributes_follow);
	return res.status;
}

static uint32_t do_mkdir(const struct nfs_fh *dir, const char *name, struct nfs_fh *out)
{
	MKDIR3args a;
	MKDIR3res res;

	memset(&a, 0, sizeof(a));
	fh3(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.attributes.mode.set_it = 1;
	a.attributes.mode.set_mode3_u.mode = 0755;
	ENC(zdr_MKDIR3args, &a);
	run_call(9);
	DEC(zdr_MKDIR3res, &res);
	if (res.status == NFS3_OK && out)
		fh_from3(out, &res.MKDIR3res_u.resok.obj.post_op_fh3_u.handle);
	return res.status;
}

/* ----------------------------------------------------------------- tests */

static void test_errno_map(void **state)
{
	(void)state;
	assert_int_equal(nfs3_errno_to_status(0), NFS3_OK);
	assert_int_equal(nfs3_errno_to_status(-ENOENT), NFS3ERR_NOENT);
	assert_int_equal(nfs3_errno_to_status(ENOENT), NFS3ERR_NOENT);
	assert_int_equal(nfs3_errno_to_status(-EACCES), NFS3ERR_ACCES);
	assert_int_equal(nfs3_errno_to_status(-EPERM), NFS3ERR_PERM);
	assert_int_equal(nfs3_errno_to_status(-EEXIST), NFS3ERR_EXIST);
	assert_int_equal(nfs3_errno_to_status(-ENOTDIR), NFS3ERR_NOTDIR);
	assert_int_equal(nfs3_errno_to_status(-EISDIR), NFS3ERR_ISDIR);
	assert_int_equal(nfs3_errno_to_status(-ENOTEMPTY), NFS3ERR_NOTEMPTY);
	assert_int_equal(nfs3_errno_to_status(-ESTALE), NFS3ERR_STALE);
	assert_int_equal(nfs3_errno_to_status(-EBADMSG), NFS3ERR_BADHANDLE);
	assert_int_equal(nfs3_errno_to_status(-EROFS), NFS3ERR_ROFS);
	assert_int_equal(nfs3_errno_to_status(-ENOSPC), NFS3ERR_NOSPC);
	assert_int_equal(nfs3_errno_to_status(-EDQUOT), NFS3ERR_DQUOT);
	assert_int_equal(nfs3_errno_to_status(-ENAMETOOLONG), NFS3ERR_NAMETOOLONG);
	assert_int_equal(nfs3_errno_to_status(-EXDEV), NFS3ERR_XDEV);
	assert_int_equal(nfs3_errno_to_status(-EMLINK), NFS3ERR_MLINK);
	assert_int_equal(nfs3_errno_to_status(-EFBIG), NFS3ERR_FBIG);
	assert_int_equal(nfs3_errno_to_status(-ENOMEM), NFS3ERR_JUKEBOX);
	assert_int_equal(nfs3_errno_to_status(-EOPNOTSUPP), NFS3ERR_NOTSUPP);
	assert_int_equal(nfs3_errno_to_status(-EIO), NFS3ERR_IO);
	assert_int_equal(nfs3_errno_to_status(-EHOSTDOWN), NFS3ERR_IO);
}

static void test_null_and_bad_proc(void **state)
{
	(void)state;
	arglen = 0;
	run_call(0);
	assert_int_equal(rep.accept_err, -1);
	assert_int_equal(rep.len, 0);
	run_call(22);
	assert_int_equal(rep.accept_err, RPC_PROC_UNAVAIL);
}

static void test_garbage_args(void **state)
{
	GETATTR3args a;
	(void)state;

	/* truncated handle */
	fh3(&a.object, &root_fh);
	ENC(zdr_GETATTR3args, &a);
	arglen -= 8;
	run_call(1);
	assert_int_equal(rep.accept_err, RPC_GARBAGE_ARGS);
	/* handle length beyond NFS3_FHSIZE */
	argbuf[0] = 0; argbuf[1] = 0; argbuf[2] = 0; argbuf[3] = 65;
	arglen = 4 + 68;
	run_call(1);
	assert_int_equal(rep.accept_err, RPC_GARBAGE_ARGS);
	/* huge length, short buffer */
	argbuf[0] = 0x80;
	arglen = 8;
	run_call(3);
	assert_int_equal(rep.accept_err, RPC_GARBAGE_ARGS);
	/* every truncation of a WRITE is garbage, never a crash */
	{
		WRITE3args w;
		char data[100] = "x";
		uint32_t full;
		fh3(&w.file, &root_fh);
		w.offset = 0; w.count = 100; w.stable = UNSTABLE;
		w.data.data_len = 100; w.data.data_val = data;
		ENC(zdr_WRITE3args, &w);
		full = arglen;
		for (uint32_t l = 0; l < full; l += 3) {
			arglen = l;
			run_call(7);
			assert_int_equal(rep.accept_err, RPC_GARBAGE_ARGS);
		}
	}
}

static void test_getattr_root(void **state)
{
	fattr3 at;
	struct stat st;
	(void)state;

	assert_int_equal(do_getattr(&root_fh, &at), NFS3_OK);
	assert_int_equal(stat(tdir, &st), 0);
	assert_int_equal(at.type, NF3DIR);
	assert_int_equal(at.fileid, st.st_ino);
	assert_int_equal(at.fsid, eid);
	assert_int_equal(at.mode, st.st_mode & 07777);
	/* the same through a direct statx */
	nfs3_inline_statx = 1;
	assert_int_equal(do_getattr(&root_fh, &at), NFS3_OK);
	assert_int_equal(at.fileid, st.st_ino);
}

static void test_bad_handles(void **state)
{
	struct nfs_fh f = root_fh;
	(void)state;

	f.data[f.len - 1] ^= 1;
	assert_int_equal(do_getattr(&f, NULL), NFS3ERR_BADHANDLE);
	f = root_fh;
	f.len -= 1;
	assert_int_equal(do_getattr(&f, NULL), NFS3ERR_BADHANDLE);
	f.len = 0;
	assert_int_equal(do_getattr(&f, NULL), NFS3ERR_BADHANDLE);
	memset(f.data, 0, sizeof(f.data));
	f.len = 32;
	assert_int_equal(do_lookup(&f, "x", NULL), NFS3ERR_BADHANDLE);
}

static void test_create_write_read(void **state)
{
	struct nfs_fh f;
	WRITE3resok w, w2;
	uint8_t data[8192], back[8192];
	uint32_t got;
	bool eof;
	fattr3 at;
	(void)state;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(do_create(&root_fh, "file1", UNCHECKED, 0640, NULL, &f), NFS3_OK);
	assert_int_equal(do_getattr(&f, &at), NFS3_OK);
	assert_int_equal(at.type, NF3REG);
	assert_int_equal(at.mode, 0640);
	assert_int_equal(at.size, 0);

	assert_int_equal(do_write(&f, 0, data, 4096, FILE_SYNC, &w), NFS3_OK);
	assert_int_equal(w.count, 4096);
	assert_int_equal(w.committed, FILE_SYNC);
	assert_true(w.file_wcc.before.attributes_follow);
	assert_true(w.file_wcc.after.attributes_follow);
	assert_int_equal(w.file_wcc.before.pre_op_attr_u.attributes.size, 0);
	assert_int_equal(w.file_wcc.after.post_op_attr_u.attributes.size, 4096);
	assert_int_equal(do_write(&f, 4096, data + 4096, 4096, UNSTABLE, &w2), NFS3_OK);
	assert_int_equal(w2.committed, UNSTABLE);
	assert_int_equal(do_write(&f, 100, data + 100, 10, DATA_SYNC, &w2), NFS3_OK);
	assert_int_equal(w2.committed, DATA_SYNC);
	/* the verifier is fixed for the life of the process */
	assert_memory_equal(w.verf, w2.verf, 8);

	assert_int_equal(do_read(&f, 0, 8192, back, &got, &eof), NFS3_OK);
	assert_int_equal(got, 8192);
	assert_true(eof);
	assert_memory_equal(back, data, 8192);
	assert_int_equal(do_read(&f, 1000, 100, back, &got, &eof), NFS3_OK);
	assert_int_equal(got, 100);
	assert_false(eof);
	assert_memory_equal(back, data + 1000, 100);
	assert_int_equal(do_read(&f, 8192, 100, back, &got, &eof), NFS3_OK);
	assert_int_equal(got, 0);
	assert_true(eof);
	assert_int_equal(do_read(&f, UINT64_MAX - 10, 100, back, &got, &eof), NFS3_OK);
	assert_int_equal(got, 0);
	assert_true(eof);
	/* with direct statx too */
	nfs3_inline_statx = 1;
	assert_int_equal(do_read(&f, 10, 20, back, &got, &eof), NFS3_OK);
	assert_memory_equal(back, data + 10, 20);

	/* READ/WRITE of a directory */
	assert_int_equal(do_read(&root_fh, 0, 10, back, &got, &eof), NFS3ERR_ISDIR);
	assert_int_equal(do_write(&root_fh, 0, data, 10, UNSTABLE, NULL), NFS3ERR_ISDIR);

	/* COMMIT: same verifier, wcc */
	{
		COMMIT3args c;
		COMMIT3res cr;
		fh3(&c.file, &f);
		c.offset = 0;
		c.count = 0;
		ENC(zdr_COMMIT3args, &c);
		run_call(21);
		DEC(zdr_COMMIT3res, &cr);
		assert_int_equal(cr.status, NFS3_OK);
		assert_memory_equal(cr.COMMIT3res_u.resok.verf, w.verf, 8);
		assert_true(cr.COMMIT3res_u.resok.file_wcc.after.attributes_follow);
	}
	/* GUARDED on an existing name */
	assert_int_equal(do_create(&root_fh, "file1", GUARDED, 0644, NULL, NULL), NFS3ERR_EXIST);
	/* UNCHECKED on an existing name keeps data and mode */
	assert_int_equal(do_create(&root_fh, "file1", UNCHECKED, 0600, NULL, NULL), NFS3_OK);
	assert_int_equal(do_getattr(&f, &at), NFS3_OK);
	assert_int_equal(at.size, 8192);
	assert_int_equal(at.mode, 0640);
}

static void test_write_verf_bump(void **state)
{
	uint8_t a[8], b[8];
	(void)state;
	nfs3_write_verf(a);
	nfs3_write_verf(b);
	assert_memory_equal(a, b, 8);
	nfs3_write_verf_bump();
	nfs3_write_verf(b);
	assert_memory_not_equal(a, b, 8);
}

static void test_exclusive_create(void **state)
{
	struct nfs_fh f1, f2;
	fattr3 at;
	(void)state;

	assert_int_equal(do_create(&root_fh, "excl", EXCLUSIVE, -1, "ABCDEFGH", &f1), NFS3_OK);
	/* a retransmission with the same verifier finds "its" file */
	assert_int_equal(do_create(&root_fh, "excl", EXCLUSIVE, -1, "ABCDEFGH", &f2), NFS3_OK);
	assert_int_equal(f1.len, f2.len);
	assert_memory_equal(f1.data, f2.data, f1.len);
	/* another verifier: EXIST */
	assert_int_equal(do_create(&root_fh, "excl", EXCLUSIVE, -1, "ABCDEFGX", NULL), NFS3ERR_EXIST);
	/* the client then sets the real attributes (RFC 1813 3.3.8) */
	{
		SETATTR3args s;
		SETATTR3res sr;
		memset(&s, 0, sizeof(s));
		fh3(&s.object, &f1);
		s.new_attributes.mode.set_it = 1;
		s.new_attributes.mode.set_mode3_u.mode = 0644;
		s.new_attributes.atime.set_it = SET_TO_SERVER_TIME;
		s.new_attributes.mtime.set_it = SET_TO_SERVER_TIME;
		ENC(zdr_SETATTR3args, &s);
		run_call(2);
		DEC(zdr_SETATTR3res, &sr);
		assert_int_equal(sr.status, NFS3_OK);
		assert_true(sr.SETATTR3res_u.resok.obj_wcc.before.attributes_follow);
	}
	assert_int_equal(do_getattr(&f1, &at), NFS3_OK);
	assert_int_equal(at.mode, 0644);
	/* after that, the old verifier no longer matches */
	assert_int_equal(do_create(&root_fh, "excl", EXCLUSIVE, -1, "ABCDEFGH", NULL), NFS3ERR_EXIST);
}

static void test_lookup_rules(void **state)
{
	struct nfs_fh f, d, up;
	fattr3 a1, a2;
	char p[600];
	(void)state;

	assert_int_equal(do_lookup(&root_fh, "nope", NULL), NFS3ERR_NOENT);
	assert_int_equal(do_lookup(&root_fh, "a/b", NULL), NFS3ERR_ACCES);
	assert_int_equal(do_lookup(&root_fh, "", NULL), NFS3ERR_ACCES);
	{
		char longname[300];
		memset(longname, 'n', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = 0;
		assert_int_equal(do_lookup(&root_fh, longname, NULL), NFS3ERR_NAMETOOLONG);
	}
	/* ".." of the root is the root: nothing above the export */
	assert_int_equal(do_lookup(&root_fh, "..", &up), NFS3_OK);
	assert_int_equal(do_getattr(&up, &a1), NFS3_OK);
	assert_int_equal(do_getattr(&root_fh, &a2), NFS3_OK);
	assert_int_equal(a1.fileid, a2.fileid);
	assert_int_equal(do_lookup(&root_fh, ".", &up), NFS3_OK);
	assert_int_equal(do_getattr(&up, &a1), NFS3_OK);
	assert_int_equal(a1.fileid, a2.fileid);
	/* ".." of a subdirectory is the root */
	assert_int_equal(do_mkdir(&root_fh, "sub", &d), NFS3_OK);
	assert_int_equal(do_mkdir(&root_fh, "sub", NULL), NFS3ERR_EXIST);
	assert_int_equal(do_lookup(&d, "..", &up), NFS3_OK);
	assert_int_equal(do_getattr(&up, &a1), NFS3_OK);
	assert_int_equal(a1.fileid, a2.fileid);
	/* LOOKUP in a non-directory */
	assert_int_equal(do_create(&root_fh, "plain", UNCHECKED, 0644, NULL, &f), NFS3_OK);
	assert_int_equal(do_lookup(&f, "x", NULL), NFS3ERR_NOTDIR);
	/* symlinks are never followed: the link itself comes back */
	snprintf(p, sizeof(p), "%s/escape", tdir);
	assert_int_equal(symlink("/etc", p), 0);
	assert_int_equal(do_lookup(&root_fh, "escape", &f), NFS3_OK);
	assert_int_equal(do_getattr(&f, &a1), NFS3_OK);
	assert_int_equal(a1.type, NF3LNK);
	assert_int_equal(do_lookup(&f, "passwd", NULL), NFS3ERR_NOTDIR);
	{
		READLINK3args ra;
		READLINK3res rr;
		fh3(&ra.symlink, &f);
		ENC(zdr_READLINK3args, &ra);
		run_call(5);
		DEC(zdr_READLINK3res, &rr);
		assert_int_equal(rr.status, NFS3_OK);
		assert_string_equal(rr.READLINK3res_u.resok.data, "/etc");
		/* READLINK of a non-symlink */
		fh3(&ra.symlink, &root_fh);
		ENC(zdr_READLINK3args, &ra);
		run_call(5);
		DEC(zdr_READLINK3res, &rr);
		assert_int_equal(rr.status, NFS3ERR_INVAL);
	}
}

static void test_stale_after_remove(void **state)
{
	struct nfs_fh f;
	uint32_t got;
	bool eof;
	char buf[16];
	(void)state;

	assert_int_equal(do_create(&root_fh, "gone", UNCHECKED, 0644, NULL, &f), NFS3_OK);
	assert_int_equal(do_write(&f, 0, "abc", 3, UNSTABLE, NULL), NFS3_OK);  /* now cached */
	assert_int_equal(do_remove(&root_fh, "gone", 12), NFS3_OK);
	assert_int_equal(do_remove(&root_fh, "gone", 12), NFS3ERR_NOENT);
	assert_int_equal(do_getattr(&f, NULL), NFS3ERR_STALE);
	assert_int_equal(do_read(&f, 0, 3, buf, &got, &eof), NFS3ERR_STALE);
	/* not cached any more: decoded again, still STALE */
	assert_int_equal(do_getattr(&f, NULL), NFS3ERR_STALE);
}

static void test_namespace_ops(void **state)
{
	struct nfs_fh d, f, l;
	fattr3 at;
	(void)state;

	assert_int_equal(do_mkdir(&root_fh, "ns", &d), NFS3_OK);
	assert_int_equal(do_create(&d, "a", UNCHECKED, 0644, NULL, &f), NFS3_OK);
	assert_int_equal(do_create(&d, "..", UNCHECKED, 0644, NULL, NULL), NFS3ERR_EXIST);
	/* RENAME a -> b */
	{
		RENAME3args a;
		RENAME3res res;
		fh3(&a.from.dir, &d);
		a.from.name = "a";
		fh3(&a.to.dir, &d);
		a.to.name = "b";
		ENC(zdr_RENAME3args, &a);
		run_call(14);
		DEC(zdr_RENAME3res, &res);
		assert_int_equal(res.status, NFS3_OK);
		assert_true(res.RENAME3res_u.resok.fromdir_wcc.after.attributes_follow);
		assert_true(res.RENAME3res_u.resok.todir_wcc.after.attributes_follow);
		/* across exports: XDEV */
		fh3(&a.to.dir, &ro_root_fh);
		a.from.name = "b";
		ENC(zdr_RENAME3args, &a);
		run_call(14);
		DEC(zdr_RENAME3res, &res);
		assert_int_equal(res.status, NFS3ERR_XDEV);
	}
	assert_int_equal(do_lookup(&d, "a", NULL), NFS3ERR_NOENT);
	assert_int_equal(do_lookup(&d, "b", &l), NFS3_OK);
	assert_memory_equal(l.data, f.data, f.len);    /* same object, same handle */
	/* LINK b -> c */
	{
		LINK3args a;
		LINK3res res;
		fh3(&a.file, &f);
		fh3(&a.link.dir, &d);
		a.link.name = "c";
		ENC(zdr_LINK3args, &a);
		run_call(15);
		DEC(zdr_LINK3res, &res);
		assert_int_equal(res.status, NFS3_OK);
		assert_int_equal(res.LINK3res_u.resok.file_attributes.post_op_attr_u.attributes.nlink, 2);
	}
	/* SYMLINK */
	{
		SYMLINK3args a;
		SYMLINK3res res;
		memset(&a, 0, sizeof(a));
		fh3(&a.where.dir, &d);
		a.where.name = "s";
		a.symlink.symlink_data = "../../../etc/shadow";
		ENC(zdr_SYMLINK3args, &a);
		run_call(10);
		DEC(zdr_SYMLINK3res, &res);
		assert_int_equal(res.status, NFS3_OK);
		assert_int_equal(res.SYMLINK3res_u.resok.obj_attributes.post_op_attr_u.attributes.type, NF3LNK);
	}
	/* MKNOD: a FIFO; a regular file is BADTYPE */
	{
		MKNOD3args a;
		MKNOD3res res;
		memset(&a, 0, sizeof(a));
		fh3(&a.where.dir, &d);
		a.where.name = "fifo";
		a.what.type = NF3FIFO;
		ENC(zdr_MKNOD3args, &a);
		run_call(11);
		DEC(zdr_MKNOD3res, &res);
		assert_int_equal(res.status, NFS3_OK);
		assert_int_equal(res.MKNOD3res_u.resok.obj_attributes.post_op_attr_u.attributes.type, NF3FIFO);
		a.where.name = "reg";
		a.what.type = NF3REG;
		ENC(zdr_MKNOD3args, &a);
		run_call(11);
		DEC(zdr_MKNOD3res, &res);
		assert_int_equal(res.status, NFS3ERR_BADTYPE);
	}
	/* RMDIR of a non-empty directory, REMOVE of a directory */
	assert_int_equal(do_remove(&root_fh, "ns", 13), NFS3ERR_NOTEMPTY);
	assert_int_equal(do_remove(&root_fh, "ns", 12), NFS3ERR_ISDIR);
	assert_int_equal(do_remove(&d, ".", 13), NFS3ERR_INVAL);
	assert_int_equal(do_remove(&d, "b", 12), NFS3_OK);
	assert_int_equal(do_remove(&d, "c", 12), NFS3_OK);
	assert_int_equal(do_remove(&d, "s", 12), NFS3_OK);
	assert_int_equal(do_remove(&d, "fifo", 12), NFS3_OK);
	assert_int_equal(do_remove(&root_fh, "ns", 13), NFS3_OK);
	assert_int_equal(do_getattr(&d, &at), NFS3ERR_STALE);
}

static void test_setattr_guard_and_size(void **state)
{
	struct nfs_fh f;
	fattr3 at;
	SETATTR3args s;
	SETATTR3res sr;
	(void)state;

	assert_int_equal(do_create(&root_fh, "sa", UNCHECKED, 0644, NULL, &f), NFS3_OK);
	assert_int_equal(do_getattr(&f, &at), NFS3_OK);
	memset(&s, 0, sizeof(s));
	fh3(&s.object, &f);
	s.new_attributes.size.set_it = 1;
	s.new_attributes.size.set_size3_u.size = 12345;
	s.guard.check = 1;
	s.guard.sattrguard3_u.obj_ctime = at.ctime;
	s.guard.sattrguard3_u.obj_ctime.seconds -= 1;
	ENC(zdr_SETATTR3args, &s);
	run_call(2);
	DEC(zdr_SETATTR3res, &sr);
	assert_int_equal(sr.status, NFS3ERR_NOT_SYNC);
	s.guard.sattrguard3_u.obj_ctime = at.ctime;
	ENC(zdr_SETATTR3args, &s);
	run_call(2);
	DEC(zdr_SETATTR3res, &sr);
	assert_int_equal(sr.status, NFS3_OK);
	assert_int_equal(sr.SETATTR3res_u.resok.obj_wcc.before.pre_op_attr_u.attributes.size, 0);
	assert_int_equal(sr.SETATTR3res_u.resok.obj_wcc.after.post_op_attr_u.attributes.size, 12345);
	/* client times */
	memset(&s, 0, sizeof(s));
	fh3(&s.object, &f);
	s.new_attributes.mtime.set_it = SET_TO_CLIENT_TIME;
	s.new_attributes.mtime.set_mtime_u.mtime.seconds = 1000000;
	s.new_attributes.mtime.set_mtime_u.mtime.nseconds = 5;
	ENC(zdr_SETATTR3args, &s);
	run_call(2);
	DEC(zdr_SETATTR3res, &sr);
	assert_int_equal(sr.status, NFS3_OK);
	assert_int_equal(do_getattr(&f, &at), NFS3_OK);
	assert_int_equal(at.mtime.seconds, 1000000);
	assert_int_equal(at.mtime.nseconds, 5);
}

/* READDIR / READDIRPLUS replies are parsed by hand here (xdr.h cursors):
 * libnfs 4.0's decoder allocates the entry list misaligned (UBSan), and an
 * independent parser checks our encoding too. */
struct dirent_t {
	uint64_t fileid, cookie;
	char name[256];
	bool attrs, handle;
	uint64_t attr_fileid;
};

static uint32_t parse_dir_reply(bool plus, uint8_t verf[8], struct dirent_t *ents, int max,
				int *n, bool *eof)
{
	struct xdr_dec d;
	uint32_t status, len;

	xdr_dec_init(&d, rep.buf, rep.len);
	status = xdr_get_u32(&d);
	if (xdr_get_u32(&d)) {
		assert_true(xdr_dec_left(&d) >= 84);
		d.p += 84;
	}
	if (status != NFS3_OK) {
		assert_false(d.err);
		return status;
	}
	memcpy(verf, d.p, 8);
	d.p += 8;
	*n = 0;
	while (xdr_get_u32(&d)) {
		struct dirent_t *e = &ents[*n];
		assert_true(*n < max);
		e->fileid = xdr_get_u64(&d);
		xdr_get_string(&d, e->name, sizeof(e->name), 255);
		e->cookie = xdr_get_u64(&d);
		e->attrs = e->handle = false;
		if (plus) {
			if ((e->attrs = xdr_get_u32(&d))) {
				assert_true(xdr_dec_left(&d) >= 84);
				e->attr_fileid = (uint64_t)xdr_be32(d.p + 52) << 32 | xdr_be32(d.p + 56);
				d.p += 84;
			}
			if ((e->handle = xdr_get_u32(&d)))
				assert_non_null(xdr_get_opaque(&d, &len, 64));
		}
		assert_false(d.err);
		(*n)++;
	}
	*eof = xdr_get_u32(&d);
	assert_false(d.err);
	assert_int_equal(xdr_dec_left(&d), 0);
	return status;
}

/* A listing resumed page by page with the cookies must return every name
 * exactly once. */
static void check_listing(bool plus, int nfiles, uint32_t count)
{
	uint64_t cookie = 0;
	uint8_t verf[8] = { 0 };
	char *seen = calloc((size_t)nfiles, 1);
	int dots = 0, pages = 0, total = 0;
	bool eof = false;
	struct nfs_fh d;
	static struct dirent_t ents[20000];

	assert_int_equal(do_lookup(&root_fh, "many", &d), NFS3_OK);
	while (!eof) {
		int n = 0;
		pages++;
		assert_true(pages < 10000);
		if (plus) {
			READDIRPLUS3args a;
			fh3(&a.dir, &d);
			a.cookie = cookie;
			memcpy(a.cookieverf, verf, 8);
			a.dircount = count / 4;
			a.maxcount = count;
			ENC(zdr_READDIRPLUS3args, &a);
			run_call(17);
		} else {
			READDIR3args a;
			fh3(&a.dir, &d);
			a.cookie = cookie;
			memcpy(a.cookieverf, verf, 8);
			a.count = count;
			ENC(zdr_READDIR3args, &a);
			run_call(16);
		}
		assert_int_equal(rep.accept_err, -1);
		/* count/maxcount bound the resok (the status word aside) */
		assert_true(rep.len <= count + 4);
		assert_int_equal(parse_dir_reply(plus, verf, ents, 20000, &n, &eof), NFS3_OK);
		for (int i = 0; i < n; i++) {
			struct dirent_t *e = &ents[i];
			int k;
			total++;
			cookie = e->cookie;
			if (!strcmp(e->name, ".") || !strcmp(e->name, "..")) {
				dots++;
				continue;
			}
			if (plus) {
				assert_true(e->attrs);
				assert_true(e->handle);
				assert_int_equal(e->attr_fileid, e->fileid);
			}
			assert_int_equal(sscanf(e->name, "f%d", &k), 1);
			assert_true(k >= 0 && k < nfiles);
			assert_int_equal(seen[k], 0);
			seen[k] = 1;
		}
	}
	assert_int_equal(dots, 2);
	for (int i = 0; i < nfiles; i++)
		assert_int_equal(seen[i], 1);
	if (count < 20000)
		assert_true(pages > 1);
	assert_int_equal(total, nfiles + 2);
	free(seen);
}

static void test_readdir_cookies(void **state)
{
	char p[600];
	struct nfs_fh d;
	(void)state;

	snprintf(p, sizeof(p), "%s/many", tdir);
	assert_int_equal(mkdir(p, 0755), 0);
	for (int i = 0; i < 300; i++) {
		int fd;
		snprintf(p, sizeof(p), "%s/many/f%d", tdir, i);
		fd = open(p, O_CREAT | O_WRONLY, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	check_listing(false, 300, 1024);
	check_listing(true, 300, 4096);
	check_listing(false, 300, 65536);
	check_listing(true, 300, 1 << 20);

	/* a foreign cookie verifier: BAD_COOKIE; too small a count: TOOSMALL */
	assert_int_equal(do_lookup(&root_fh, "many", &d), NFS3_OK);
	{
		READDIR3args a;
		READDIR3res res;
		fh3(&a.dir, &d);
		a.cookie = 12345;
		memcpy(a.cookieverf, "bogus!!!", 8);
		a.count = 4096;
		ENC(zdr_READDIR3args, &a);
		run_call(16);
		DEC(zdr_READDIR3res, &res);
		assert_int_equal(res.status, NFS3ERR_BAD_COOKIE);
		a.cookie = 0;
		memset(a.cookieverf, 0, 8);
		a.count = 50;
		ENC(zdr_READDIR3args, &a);
		run_call(16);
		DEC(zdr_READDIR3res, &res);
		assert_int_equal(res.status, NFS3ERR_TOOSMALL);
		/* READDIR of a file */
		assert_int_equal(do_lookup(&d, "f1", &d), NFS3_OK);
		fh3(&a.dir, &d);
		a.count = 4096;
		ENC(zdr_READDIR3args, &a);
		run_call(16);
		DEC(zdr_READDIR3res, &res);
		assert_int_equal(res.status, NFS3ERR_NOTDIR);
	}
}

static void test_fs_info(void **state)
{
	(void)state;
	{
		FSINFO3args a;
		FSINFO3res res;
		fh3(&a.fsroot, &root_fh);
		ENC(zdr_FSINFO3args, &a);
		run_call(19);
		DEC(zdr_FSINFO3res, &res);
		assert_int_equal(res.status, NFS3_OK);
		assert_int_equal(res.FSINFO3res_u.resok.rtmax, 1 << 20);
		assert_int_equal(res.FSINFO3res_u.resok.wtmax, 1 << 20);
		assert_int_equal(res.FSINFO3res_u.resok.properties,
				 FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME);
	}
	{
		FSSTAT3args a;
		FSSTAT3res res;
		fh3(&a.fsroot, &root_fh);
		ENC(zdr_FSSTAT3args, &a);
		run_call(18);
		DEC(zdr_FSSTAT3res, &res);
		assert_int_equal(res.status, NFS3_OK);
		assert_true(res.FSSTAT3res_u.resok.tbytes >= res.FSSTAT3res_u.resok.fbytes);
		assert_true(res.FSSTAT3res_u.resok.tbytes > 0);
	}
	{
		PATHCONF3args a;
		PATHCONF3res res;
		fh3(&a.object, &root_fh);
		ENC(zdr_PATHCONF3args, &a);
		run_call(20);
		DEC(zdr_PATHCONF3res, &res);
		assert_int_equal(res.status, NFS3_OK);
		assert_int_equal(res.PATHCONF3res_u.resok.name_max, 255);
		assert_true(res.PATHCONF3res_u.resok.no_trunc);
	}
}

static uint32_t do_access(const struct nfs_fh *fh, uint32_t want, uint32_t *got)
{
	ACCESS3args a;
	ACCESS3res res;

	fh3(&a.object, fh);
	a.access = want;
	ENC(zdr_ACCESS3args, &a);
	run_call(4);
	DEC(zdr_ACCESS3res, &res);
	if (res.status == NFS3_OK)
		*got = res.ACCESS3res_u.resok.access;
	return res.status;
}

static void test_access_and_permissions(void **state)
{
	struct nfs_fh f, d;
	uint32_t got;
	char p[600];
	const uint32_t all = 0x3f;
	(void)state;

	assert_int_equal(do_create(&root_fh, "priv", UNCHECKED, 0600, NULL, &f), NFS3_OK);
	assert_int_equal(do_access(&f, all, &got), NFS3_OK);
	assert_int_equal(got, ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND);
	/* another user: nothing */
	cur_uid = 1000;
	cur_gid = 1000;
	assert_int_equal(do_access(&f, all, &got), NFS3_OK);
	assert_int_equal(got, 0);
	{
		uint32_t n;
		bool eof;
		char buf[8];
		assert_int_equal(do_read(&f, 0, 4, buf, &n, &eof), NFS3ERR_ACCES);
		assert_int_equal(do_write(&f, 0, "x", 1, UNSTABLE, NULL), NFS3ERR_ACCES);
	}
	/* the kernel checks the metadata calls with the caller's credentials */
	assert_int_equal(do_create(&root_fh, "by1000", UNCHECKED, 0644, NULL, NULL), NFS3ERR_ACCES);
	assert_int_equal(do_remove(&root_fh, "priv", 12), NFS3ERR_ACCES);
	/* a directory the user owns: files created there belong to the user */
	cur_uid = 0;
	cur_gid = 0;
	snprintf(p, sizeof(p), "%s/home1000", tdir);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(chown(p, 1000, 1000), 0);
	assert_int_equal(do_lookup(&root_fh, "home1000", &d), NFS3_OK);
	cur_uid = 1000;
	cur_gid = 1000;
	assert_int_equal(do_create(&d, "mine", UNCHECKED, 0444, NULL, &f), NFS3_OK);
	{
		fattr3 at;
		assert_int_equal(do_getattr(&f, &at), NFS3_OK);
		assert_int_equal(at.uid, 1000);
		assert_int_equal(at.gid, 1000);
		assert_int_equal(at.mode, 0444);
	}
	/* owner override: the owner writes its read-only file (nfsd does) */
	assert_int_equal(do_write(&f, 0, "x", 1, FILE_SYNC, NULL), NFS3_OK);
	/* from an unprivileged port the export is "insecure": fine */
	cur_port = 40000;
	assert_int_equal(do_getattr(&f, NULL), NFS3_OK);
	cur_uid = 0;
	cur_gid = 0;
}

static void test_ro_export(void **state)
{
	uint32_t got;
	(void)state;

	assert_int_equal(do_create(&ro_root_fh, "x", UNCHECKED, 0644, NULL, NULL), NFS3ERR_ROFS);
	assert_int_equal(do_mkdir(&ro_root_fh, "x", NULL), NFS3ERR_ROFS);
	assert_int_equal(do_remove(&ro_root_fh, "x", 12), NFS3ERR_ROFS);
	assert_int_equal(do_access(&ro_root_fh, 0x3f, &got), NFS3_OK);
	assert_int_equal(got & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE), 0);
	assert_true(got & ACCESS3_READ);
	/* root_squash (the default) on the ro export: root is nobody */
	assert_int_equal(do_lookup(&ro_root_fh, ".", NULL), NFS3_OK);
}

static void test_squash_and_secure_port(void **state)
{
	struct nfs_fh f;
	fattr3 at;
	(void)state;

	/* root_squash: root's new file belongs to anonuid/anongid */
	assert_int_equal(do_create(&sq_root_fh, "byroot", UNCHECKED, 0644, NULL, &f), NFS3_OK);
	assert_int_equal(do_getattr(&f, &at), NFS3_OK);
	assert_int_equal(at.uid, 4242);
	assert_int_equal(at.gid, 4243);
	/* a normal user keeps its identity */
	cur_uid = 1234;
	cur_gid = 1235;
	assert_int_equal(do_create(&sq_root_fh, "byuser", UNCHECKED, 0644, NULL, &f), NFS3_OK);
	assert_int_equal(do_getattr(&f, &at), NFS3_OK);
	assert_int_equal(at.uid, 1234);
	assert_int_equal(at.gid, 1235);
	/* the squashed root cannot write the user's 0644 file */
	cur_uid = 0;
	cur_gid = 0;
	assert_int_equal(do_write(&f, 0, "x", 1, UNSTABLE, NULL), NFS3ERR_ACCES);
	/* "secure" (default): a request from port >= 1024 is refused */
	cur_port = 40000;
	assert_int_equal(do_getattr(&sq_root_fh, NULL), NFS3ERR_PERM);
	cur_port = 1023;
	assert_int_equal(do_getattr(&sq_root_fh, NULL), NFS3_OK);
}

static void test_auth_none_refused(void **state)
{
	GETATTR3args a;
	(void)state;

	fh3(&a.object, &root_fh);
	ENC(zdr_GETATTR3args, &a);
	memset(&the_call, 0, sizeof(the_call));
	run_call(1);                    /* sanity: AUTH_SYS works */
	assert_int_equal(rep.auth_err, -1);
	/* no sec=none on the export: AUTH_TOOWEAK */
	{
		the_call.auth.flavor = RPC_AUTH_NONE;
		run_prepared();
		assert_int_equal(rep.auth_err, RPC_AUTH_TOOWEAK);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_errno_map, reset_creds),
		cmocka_unit_test_setup(test_null_and_bad_proc, reset_creds),
		cmocka_unit_test_setup(test_garbage_args, reset_creds),
		cmocka_unit_test_setup(test_getattr_root, reset_creds),
		cmocka_unit_test_setup(test_bad_handles, reset_creds),
		cmocka_unit_test_setup(test_create_write_read, reset_creds),
		cmocka_unit_test_setup(test_write_verf_bump, reset_creds),
		cmocka_unit_test_setup(test_exclusive_create, reset_creds),
		cmocka_unit_test_setup(test_lookup_rules, reset_creds),
		cmocka_unit_test_setup(test_stale_after_remove, reset_creds),
		cmocka_unit_test_setup(test_namespace_ops, reset_creds),
		cmocka_unit_test_setup(test_setattr_guard_and_size, reset_creds),
		cmocka_unit_test_setup(test_readdir_cookies, reset_creds),
		cmocka_unit_test_setup(test_fs_info, reset_creds),
		cmocka_unit_test_setup(test_access_and_permissions, reset_creds),
		cmocka_unit_test_setup(test_ro_export, reset_creds),
		cmocka_unit_test_setup(test_squash_and_secure_port, reset_creds),
		cmocka_unit_test_setup(test_auth_none_refused, reset_creds),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
