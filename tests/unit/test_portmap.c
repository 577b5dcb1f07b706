/* Unit tests for nfsgw/portmap.c (and MOUNT, nfsgw/mount.c, on the same
 * reactor): universal address encoding, the mapping table, PMAPPROC_GETPORT /
 * DUMP / SET / UNSET over UDP, RPCBPROC_GETADDR / GETVERSADDR / DUMP /
 * GETTIME over TCP with the caller-facing address, CALLIT dropped; MOUNT
 * MNT (handle and flavors, subdirectories, "..", not exported, the secure
 * port rule), EXPORT, DUMP, UMNT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/reactor.h"
#include "core/workpool.h"
#include "nfsgw/exports.h"
#include "nfsgw/fh.h"
#include "nfsgw/mount.h"
#include "nfsgw/nfsgw.h"
#include "nfsgw/portmap.h"
#include "nfsgw/rpc.h"
#include "tests/unit/rpc_client.h"

static void test_uaddr(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	char buf[80];
	(void)state;

	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	inet_pton(AF_INET, "192.168.1.20", &s4->sin_addr);
	assert_int_equal(pmap_uaddr_format((struct sockaddr *)&ss, 2049, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "192.168.1.20.8.1");
	assert_int_equal(pmap_uaddr_port(buf), 2049);
	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "fe80::1", &s6->sin6_addr);
	assert_int_equal(pmap_uaddr_format((struct sockaddr *)&ss, 20048, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "fe80::1.78.80");
	assert_int_equal(pmap_uaddr_port(buf), 20048);
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &s6->sin6_addr);
	assert_int_equal(pmap_uaddr_format((struct sockaddr *)&ss, 111, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.1.2.3.0.111");
	assert_int_equal(pmap_uaddr_format((struct sockaddr *)&ss, 111, buf, 8), -1);
	assert_int_equal(pmap_uaddr_port("0.0.0.0.0.111"), 111);
	assert_int_equal(pmap_uaddr_port("::.255.255"), 65535);
	assert_int_equal(pmap_uaddr_port(""), -1);
	assert_int_equal(pmap_uaddr_port("1.2.3.4.256.1"), -1);
	assert_int_equal(pmap_uaddr_port("1.2.3.4.1."), -1);
	assert_int_equal(pmap_uaddr_port("1.2.3.4.x.1"), -1);
	assert_int_equal(pmap_uaddr_port("7"), -1);
}

static void test_table(void **state)
{
	(void)state;
	portmap_clear();
	assert_int_equal(portmap_set(100003, 3, "tcp", 2049, NULL, "me"), 0);
	assert_int_equal(portmap_set(100003, 3, "tcp", 2050, NULL, "me"), -EEXIST);
	assert_int_equal(portmap_set(100003, 3, "tcp6", 2049, NULL, "me"), 0);
	assert_int_equal(portmap_set(100003, 3, "toolongnetid", 1, NULL, "me"), -EINVAL);
	assert_int_equal(portmap_unset(100003, 3, "tcp6"), 1);
	assert_int_equal(portmap_unset(100003, 3, NULL), 1);
	assert_int_equal(portmap_unset(100003, 3, NULL), 0);
}

/* ================================================================ on a reactor */

static struct reactor g_r;
static pthread_t g_thr;
static int g_fds[2];
static uint16_t g_port;
static char g_dir[256];

static void *reactor_thread(void *arg)
{
	(void)arg;
	reactor_run(&g_r);
	return NULL;
}

struct sync_task {
	void (*fn)(void *);
	void *arg;
	atomic_int done;
};

static void sync_run(void *arg)
{
	struct sync_task *t = arg;
	t->fn(t->arg);
	atomic_store(&t->done, 1);
}

static void on_reactor(void (*fn)(void *), void *arg)
{
	struct sync_task t = { fn, arg, 0 };
	reactor_post(&g_r, sync_run, &t);
	while (!atomic_load(&t.done))
		usleep(1000);
}

static void start(void *arg)
{
	(void)arg;
	assert_int_equal(rpc_reactor_listen_tcp(&g_r, g_fds[0]), 0);
	assert_int_equal(rpc_reactor_serve_udp(&g_r, g_fds[1]), 0);
}

static void stop(void *arg)
{
	(void)arg;
	rpc_reactor_shutdown(&g_r);
}

static void idle(void *arg)
{
	*(int *)arg = rpc_reactor_idle(&g_r);
}

static int setup(void **state)
{
	uint8_t key[32] = { 1, 2, 3 };
	char err[256], line[512], sub[300];
	(void)state;

	rpc_register(&portmap_program);
	rpc_register(&mount_program);
	fh_secret_set(key);
	portmap_clear();
	mount_list_clear();
	nfs_exports_clear();
	snprintf(g_dir, sizeof(g_dir), "/tmp/rs-mount-test.XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	snprintf(sub, sizeof(sub), "%s/sub", g_dir);
	mkdir(sub, 0755);
	snprintf(line, sizeof(line), "%s 127.0.0.1(rw,insecure,sec=sys:none)", g_dir);
	{
		char path[4096];
		struct export_client *c;
		int n;
		assert_int_equal(exports_parse_line(line, path, sizeof(path), &c, &n, err, sizeof(err)), 0);
		assert_int_equal(nfs_export_add(path, c, n, err, sizeof(err)), 0);
		free(c);
		snprintf(line, sizeof(line), "%s/sub 127.0.0.1(rw)", g_dir);   /* secure */
		assert_int_equal(exports_parse_line(line, path, sizeof(path), &c, &n, err, sizeof(err)), 0);
		assert_int_equal(nfs_export_add(path, c, n, err, sizeof(err)), 0);
		free(c);
	}
	assert_int_equal(reactor_init(&g_r, 0, 256), 0);
	g_fds[0] = rc_listen_any(SOCK_STREAM, &g_port);
	g_fds[1] = rc_bind_port(SOCK_DGRAM, g_port);
	assert_true(g_fds[0] >= 0 && g_fds[1] >= 0);
	portmap_set(100005, 3, "tcp", 20048, NULL, "test");
	portmap_set(100005, 3, "udp", 20048, NULL, "test");
	portmap_set(100003, 3, "tcp", 2049, NULL, "test");
	portmap_set(100003, 3, "tcp6", 2049, NULL, "test");
	assert_int_equal(pthread_create(&g_thr, NULL, reactor_thread, NULL), 0);
	on_reactor(start, NULL);
	return 0;
}

static int teardown(void **state)
{
	int ok = 0;
	char sub[300];
	(void)state;

	on_reactor(stop, NULL);
	for (int i = 0; i < 500 && !ok; i++) {
		on_reactor(idle, &ok);
		usleep(2000);
	}
	assert_true(ok);
	reactor_stop(&g_r);
	pthread_join(g_thr, NULL);
	reactor_fini(&g_r);
	close(g_fds[0]);
	close(g_fds[1]);
	nfs_exports_clear();
	snprintf(sub, sizeof(sub), "%s/sub", g_dir);
	rmdir(sub);
	rmdir(g_dir);
	return 0;
}

/* udp_call() sends from a reserved port while this is set (SET/UNSET). */
static bool g_reserved;

static uint8_t *udp_call(uint32_t xid, uint32_t prog, uint32_t vers, uint32_t proc, const void *args,
			 size_t alen, const uint8_t **res, uint32_t *reslen, int *stat)
{
	int fd = rc_connect_from(SOCK_DGRAM, g_port, g_reserved);
	uint8_t msg[1024], *rep;
	uint32_t rlen;
	size_t n = rc_build_call(msg, sizeof(msg), xid, prog, vers, proc, NULL, args, alen);

	send(fd, msg, n, 0);
	rep = rc_recv_udp(fd, &rlen, 3000);
	close(fd);
	*stat = rep ? rc_parse_reply(rep, rlen, xid, res, reslen) : -2;
	return rep;
}

static uint8_t *tcp_call(int fd, uint32_t xid, uint32_t prog, uint32_t vers, uint32_t proc,
			 const void *args, size_t alen, const uint8_t **res, uint32_t *reslen, int *stat)
{
	uint8_t msg[2048], *rep;
	uint32_t rlen;
	struct rc_cred cred = { .flavor = 1, .uid = 0, .gid = 0 };
	size_t n = rc_build_call(msg, sizeof(msg), xid, prog, vers, proc, &cred, args, alen);

	rc_send_record(fd, msg, n, 1);
	rep = rc_recv_record(fd, &rlen, 3000);
	*stat = rep ? rc_parse_reply(rep, rlen, xid, res, reslen) : -2;
	return rep;
}

static void test_pmap_v2_udp(void **state)
{
	uint8_t args[16], *rep;
	const uint8_t *res;
	uint32_t reslen;
	int st;
	(void)state;

	/* GETPORT mount v3 udp */
	xdr_put_be32(args, 100005);
	xdr_put_be32(args + 4, 3);
	xdr_put_be32(args + 8, PMAP_IPPROTO_UDP);
	xdr_put_be32(args + 12, 0);
	rep = udp_call(1, PMAP_PROG, 2, PMAPPROC_GETPORT, args, 16, &res, &reslen, &st);
	assert_int_equal(st, RPC_SUCCESS);
	assert_int_equal(reslen, 4);
	assert_int_equal(xdr_be32(res), 20048);
	free(rep);
	/* any version of the program if the exact one is missing */
	xdr_put_be32(args + 4, 1);
	rep = udp_call(2, PMAP_PROG, 2, PMAPPROC_GETPORT, args, 16, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), 20048);
	free(rep);
	/* unknown program: port 0 */
	xdr_put_be32(args, 100099);
	rep = udp_call(3, PMAP_PROG, 2, PMAPPROC_GETPORT, args, 16, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), 0);
	free(rep);
	/* SET from loopback, then GETPORT, then UNSET */
	xdr_put_be32(args, 300001);
	xdr_put_be32(args + 4, 1);
	xdr_put_be32(args + 8, PMAP_IPPROTO_TCP);
	xdr_put_be32(args + 12, 4444);
	/* from an unreserved port: not a privileged local service, refused
	 * (also UNSET of a mapping that exists: NFS must stay registered) */
	g_reserved = false;
	rep = udp_call(40, PMAP_PROG, 2, PMAPPROC_SET, args, 16, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), 0);
	free(rep);
	{
		uint8_t un[16];
		memcpy(un, args, 16);
		xdr_put_be32(un, 100003);
		xdr_put_be32(un + 4, 3);
		rep = udp_call(41, PMAP_PROG, 2, PMAPPROC_UNSET, un, 16, &res, &reslen, &st);
		assert_int_equal(xdr_be32(res), 0);
		free(rep);
	}
	if (geteuid() != 0)
		skip();         /* a reserved source port needs root */
	g_reserved = true;
	rep = udp_call(4, PMAP_PROG, 2, PMAPPROC_SET, args, 16, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), 1);
	free(rep);
	rep = udp_call(5, PMAP_PROG, 2, PMAPPROC_SET, args, 16, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), 0);      /* already there */
	free(rep);
	rep = udp_call(6, PMAP_PROG, 2, PMAPPROC_GETPORT, args, 16, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), 4444);
	free(rep);
	rep = udp_call(7, PMAP_PROG, 2, PMAPPROC_UNSET, args, 16, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), 1);
	free(rep);
	g_reserved = false;
	/* DUMP: tcp/udp mappings only (not tcp6) */
	rep = udp_call(8, PMAP_PROG, 2, PMAPPROC_DUMP, NULL, 0, &res, &reslen, &st);
	assert_int_equal(st, RPC_SUCCESS);
	{
		struct xdr_dec d;
		int n = 0;
		bool nfs = false;
		xdr_dec_init(&d, res, reslen);
		while (xdr_get_u32(&d) == 1) {
			uint32_t prog = xdr_get_u32(&d), vers = xdr_get_u32(&d), prot = xdr_get_u32(&d),
				 port = xdr_get_u32(&d);
			if (prog == 100003 && vers == 3 && prot == 6 && port == 2049)
				nfs = true;
			n++;
		}
		assert_false(d.err);
		assert_int_equal(n, 3);
		assert_true(nfs);
	}
	free(rep);
	/* CALLIT: no answer */
	rep = udp_call(9, PMAP_PROG, 2, PMAPPROC_CALLIT, args, 16, &res, &reslen, &st);
	assert_null(rep);
	/* garbage arguments */
	rep = udp_call(10, PMAP_PROG, 2, PMAPPROC_GETPORT, args, 8, &res, &reslen, &st);
	assert_int_equal(st, RPC_GARBAGE_ARGS);
	free(rep);
	/* version 5: mismatch 2..4 */
	rep = udp_call(11, PMAP_PROG, 5, 0, NULL, 0, &res, &reslen, &st);
	assert_int_equal(st, RPC_PROG_MISMATCH);
	assert_int_equal(xdr_be32(res), 2);
	assert_int_equal(xdr_be32(res + 4), 4);
	free(rep);
}

static size_t rpcb_args(uint8_t *buf, uint32_t prog, uint32_t vers, const char *netid, const char *addr)
{
	struct xdr_enc e;

	xdr_enc_init(&e, buf, 512);
	xdr_put_u32(&e, prog);
	xdr_put_u32(&e, vers);
	xdr_put_string(&e, netid);
	xdr_put_string(&e, addr);
	xdr_put_string(&e, "owner");
	return xdr_enc_len(&e);
}

static void get_str(const uint8_t *res, uint32_t reslen, char *out, size_t len)
{
	struct xdr_dec d;
	xdr_dec_init(&d, res, reslen);
	xdr_get_string(&d, out, len, (uint32_t)len - 1);
	assert_false(d.err);
}

static void test_rpcb_v3v4_tcp(void **state)
{
	/* SET/UNSET below need a privileged local caller (reserved port) */
	int fd = rc_connect_from(SOCK_STREAM, g_port, geteuid() == 0), st;
	uint8_t args[512], *rep;
	const uint8_t *res;
	uint32_t reslen;
	char s[128];
	size_t n;
	(void)state;

	/* GETADDR: the address we were reached at, with the service port */
	n = rpcb_args(args, 100003, 3, "tcp", "");
	rep = tcp_call(fd, 1, PMAP_PROG, 4, RPCBPROC_GETADDR, args, n, &res, &reslen, &st);
	assert_int_equal(st, RPC_SUCCESS);
	get_str(res, reslen, s, sizeof(s));
	assert_string_equal(s, "127.0.0.1.8.1");
	free(rep);
	/* v3 too; unknown netid -> "" */
	rep = tcp_call(fd, 2, PMAP_PROG, 3, RPCBPROC_GETADDR, args, n, &res, &reslen, &st);
	get_str(res, reslen, s, sizeof(s));
	assert_string_equal(s, "127.0.0.1.8.1");
	free(rep);
	n = rpcb_args(args, 100003, 3, "udp", "");
	rep = tcp_call(fd, 3, PMAP_PROG, 3, RPCBPROC_GETADDR, args, n, &res, &reslen, &st);
	get_str(res, reslen, s, sizeof(s));
	assert_string_equal(s, "");
	free(rep);
	/* tcp6 asked over IPv4: the v6 wildcard with the port */
	n = rpcb_args(args, 100003, 3, "tcp6", "");
	rep = tcp_call(fd, 4, PMAP_PROG, 4, RPCBPROC_GETADDR, args, n, &res, &reslen, &st);
	get_str(res, reslen, s, sizeof(s));
	assert_string_equal(s, "::.8.1");
	free(rep);
	/* GETVERSADDR wants the exact version; GETADDR takes any */
	n = rpcb_args(args, 100005, 1, "tcp", "");
	rep = tcp_call(fd, 5, PMAP_PROG, 4, RPCBPROC_GETVERSADDR, args, n, &res, &reslen, &st);
	get_str(res, reslen, s, sizeof(s));
	assert_string_equal(s, "");
	free(rep);
	rep = tcp_call(fd, 6, PMAP_PROG, 4, RPCBPROC_GETADDR, args, n, &res, &reslen, &st);
	get_str(res, reslen, s, sizeof(s));
	assert_string_equal(s, "127.0.0.1.78.80");
	free(rep);
	/* GETVERSADDR is v4 only */
	rep = tcp_call(fd, 7, PMAP_PROG, 3, RPCBPROC_GETVERSADDR, args, n, &res, &reslen, &st);
	assert_int_equal(st, RPC_PROC_UNAVAIL);
	free(rep);
	/* SET with a universal address, visible through v2 GETPORT; refused
	 * from an unreserved port */
	n = rpcb_args(args, 300002, 1, "udp", "127.0.0.1.3.232");
	{
		int ufd = rc_connect_tcp(g_port);
		rep = tcp_call(ufd, 80, PMAP_PROG, 3, RPCBPROC_SET, args, n, &res, &reslen, &st);
		assert_int_equal(xdr_be32(res), 0);
		free(rep);
		close(ufd);
	}
	if (geteuid() != 0) {
		close(fd);
		skip();
	}
	rep = tcp_call(fd, 8, PMAP_PROG, 3, RPCBPROC_SET, args, n, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), 1);
	free(rep);
	{
		uint8_t a2[16];
		xdr_put_be32(a2, 300002);
		xdr_put_be32(a2 + 4, 1);
		xdr_put_be32(a2 + 8, PMAP_IPPROTO_UDP);
		xdr_put_be32(a2 + 12, 0);
		rep = tcp_call(fd, 9, PMAP_PROG, 2, PMAPPROC_GETPORT, a2, 16, &res, &reslen, &st);
		assert_int_equal(xdr_be32(res), 1000);
		free(rep);
	}
	/* DUMP lists it with its owner */
	rep = tcp_call(fd, 10, PMAP_PROG, 4, RPCBPROC_DUMP, NULL, 0, &res, &reslen, &st);
	assert_int_equal(st, RPC_SUCCESS);
	{
		struct xdr_dec d;
		bool found = false;
		int cnt = 0;
		xdr_dec_init(&d, res, reslen);
		while (xdr_get_u32(&d) == 1) {
			char netid[16], addr[80], owner[64];
			uint32_t prog = xdr_get_u32(&d);
			(void)xdr_get_u32(&d);
			xdr_get_string(&d, netid, sizeof(netid), 15);
			xdr_get_string(&d, addr, sizeof(addr), 79);
			xdr_get_string(&d, owner, sizeof(owner), 63);
			if (prog == 300002 && !strcmp(addr, "127.0.0.1.3.232") && !strcmp(owner, "owner"))
				found = true;
			cnt++;
		}
		assert_false(d.err);
		assert_int_equal(cnt, 5);
		assert_true(found);
	}
	free(rep);
	n = rpcb_args(args, 300002, 1, "", "");
	rep = tcp_call(fd, 11, PMAP_PROG, 4, RPCBPROC_UNSET, args, n, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), 1);
	free(rep);
	/* GETTIME */
	rep = tcp_call(fd, 12, PMAP_PROG, 3, RPCBPROC_GETTIME, NULL, 0, &res, &reslen, &st);
	assert_int_equal(st, RPC_SUCCESS);
	assert_true(labs((long)xdr_be32(res) - (long)time(NULL)) < 5);
	free(rep);
	/* garbage: a netid longer than we accept */
	{
		char longid[100];
		memset(longid, 'x', 99);
		longid[99] = '\0';
		n = rpcb_args(args, 1, 1, longid, "");
		rep = tcp_call(fd, 13, PMAP_PROG, 4, RPCBPROC_GETADDR, args, n, &res, &reslen, &st);
		assert_int_equal(st, RPC_GARBAGE_ARGS);
		free(rep);
	}
	close(fd);
}

/* ================================================================ MOUNT */

static size_t str_args(uint8_t *buf, const char *s)
{
	struct xdr_enc e;
	xdr_enc_init(&e, buf, 2048);
	xdr_put_string(&e, s);
	return xdr_enc_len(&e);
}

static void test_mount(void **state)
{
	int fd = rc_connect_tcp(g_port), st;
	uint8_t args[2048], *rep;
	const uint8_t *res;
	uint32_t reslen;
	char path[600];
	size_t n;
	struct xdr_dec d;
	(void)state;

	/* MNT of the export: handle + [AUTH_SYS, AUTH_NONE] */
	n = str_args(args, g_dir);
	rep = tcp_call(fd, 1, MOUNT_PROG, 3, MOUNTPROC3_MNT, args, n, &res, &reslen, &st);
	assert_int_equal(st, RPC_SUCCESS);
	xdr_dec_init(&d, res, reslen);
	assert_int_equal(xdr_get_u32(&d), MNT3_OK);
	{
		uint32_t fl, nfl;
		const uint8_t *fh = xdr_get_opaque(&d, &fl, 64);
		uint32_t id;
		struct nfs_export *e = nfs_export_get_by_path(g_dir);
		assert_non_null(fh);
		assert_int_equal(fh_verify(fh, fl, &id), 0);
		assert_int_equal(id, e->id);
		nfs_export_put(e);
		nfl = xdr_get_u32(&d);
		assert_int_equal(nfl, 2);
		assert_int_equal(xdr_get_u32(&d), RPC_AUTH_SYS);
		assert_int_equal(xdr_get_u32(&d), RPC_AUTH_NONE);
		assert_false(d.err);
	}
	free(rep);
	/* trailing slashes and "." are normalised; a subdirectory that is not
	 * an export itself is found under its export */
	snprintf(path, sizeof(path), "%s/./", g_dir);
	n = str_args(args, path);
	rep = tcp_call(fd, 2, MOUNT_PROG, 3, MOUNTPROC3_MNT, args, n, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), MNT3_OK);
	free(rep);
	/* ".." is refused, and so is a missing directory */
	snprintf(path, sizeof(path), "%s/sub/..", g_dir);
	n = str_args(args, path);
	rep = tcp_call(fd, 3, MOUNT_PROG, 3, MOUNTPROC3_MNT, args, n, &res, &reslen, &st);
	assert_int_not_equal(xdr_be32(res), MNT3_OK);
	free(rep);
	snprintf(path, sizeof(path), "%s/missing", g_dir);
	n = str_args(args, path);
	rep = tcp_call(fd, 4, MOUNT_PROG, 3, MOUNTPROC3_MNT, args, n, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), MNT3ERR_NOENT);
	free(rep);
	/* not exported */
	n = str_args(args, "/etc");
	rep = tcp_call(fd, 5, MOUNT_PROG, 3, MOUNTPROC3_MNT, args, n, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), MNT3ERR_ACCES);
	free(rep);
	/* the "secure" export from our unprivileged source port: ACCES */
	snprintf(path, sizeof(path), "%s/sub", g_dir);
	n = str_args(args, path);
	rep = tcp_call(fd, 6, MOUNT_PROG, 3, MOUNTPROC3_MNT, args, n, &res, &reslen, &st);
	assert_int_equal(xdr_be32(res), MNT3ERR_ACCES);
	free(rep);
	/* garbage: path longer than MNTPATHLEN */
	{
		static char longp[1100];
		memset(longp, 'a', 1099);
		longp[0] = '/';
		n = str_args(args, longp);
		rep = tcp_call(fd, 7, MOUNT_PROG, 3, MOUNTPROC3_MNT, args, n, &res, &reslen, &st);
		assert_int_equal(st, RPC_GARBAGE_ARGS);
		free(rep);
	}
	/* DUMP: one entry (the two MNTs of the same directory) */
	rep = tcp_call(fd, 8, MOUNT_PROG, 3, MOUNTPROC3_DUMP, NULL, 0, &res, &reslen, &st);
	xdr_dec_init(&d, res, reslen);
	assert_int_equal(xdr_get_u32(&d), 1);
	{
		char host[256], dir[1025];
		xdr_get_string(&d, host, sizeof(host), 255);
		xdr_get_string(&d, dir, sizeof(dir), 1024);
		assert_string_equal(host, "127.0.0.1");
		assert_string_equal(dir, g_dir);
	}
	assert_int_equal(xdr_get_u32(&d), 0);
	assert_false(d.err);
	free(rep);
	/* EXPORT (v1 too, as showmount -e asks) */
	rep = tcp_call(fd, 9, MOUNT_PROG, 1, MOUNTPROC3_EXPORT, NULL, 0, &res, &reslen, &st);
	assert_int_equal(st, RPC_SUCCESS);
	xdr_dec_init(&d, res, reslen);
	{
		int nexp = 0;
		while (xdr_get_u32(&d) == 1) {
			char dir[1025], grp[256];
			xdr_get_string(&d, dir, sizeof(dir), 1024);
			assert_true(strncmp(dir, g_dir, strlen(g_dir)) == 0);
			while (xdr_get_u32(&d) == 1) {
				xdr_get_string(&d, grp, sizeof(grp), 255);
				assert_string_equal(grp, "127.0.0.1");
			}
			nexp++;
		}
		assert_false(d.err);
		assert_int_equal(nexp, 2);
	}
	free(rep);
	/* UMNT removes the entry */
	n = str_args(args, g_dir);
	rep = tcp_call(fd, 10, MOUNT_PROG, 3, MOUNTPROC3_UMNT, args, n, &res, &reslen, &st);
	assert_int_equal(st, RPC_SUCCESS);
	assert_int_equal(reslen, 0);
	free(rep);
	assert_int_equal(mount_list_count(), 0);
	/* v1 MNT cannot carry our handles */
	n = str_args(args, g_dir);
	rep = tcp_call(fd, 11, MOUNT_PROG, 1, MOUNTPROC3_MNT, args, n, &res, &reslen, &st);
	assert_int_not_equal(xdr_be32(res), 0);
	free(rep);
	/* NULL over UDP */
	rep = udp_call(12, MOUNT_PROG, 3, MOUNTPROC3_NULL, NULL, 0, &res, &reslen, &st);
	assert_int_equal(st, RPC_SUCCESS);
	free(rep);
	close(fd);
}

static uint32_t getport(uint32_t prog, uint32_t vers, uint32_t prot)
{
	uint8_t a[16], *rep;
	const uint8_t *res;
	uint32_t reslen, v;
	int st;

	xdr_put_be32(a, prog);
	xdr_put_be32(a + 4, vers);
	xdr_put_be32(a + 8, prot);
	xdr_put_be32(a + 12, 0);
	rep = udp_call(77, PMAP_PROG, 2, PMAPPROC_GETPORT, a, 16, &res, &reslen, &st);
	assert_int_equal(st, RPC_SUCCESS);
	v = xdr_be32(res);
	free(rep);
	return v;
}

/* The blocking client (registration with an rpcbind that already runs)
 * against our own portmapper, and nfsgw_init()'s policy both ways. */
static void test_client_and_policy(void **state)
{
	struct nfsgw_settings s;
	uint16_t dead = 0;
	int fd;
	(void)state;

	assert_int_equal(pmap_probe(g_port, 2000), 0);
	fd = rc_listen_any(SOCK_STREAM, &dead);
	close(fd);
	assert_true(pmap_probe(dead, 500) < 0);
	assert_int_equal(pmap_client_set(g_port, true, 300005, 1, PMAP_IPPROTO_TCP, 5555), 1);
	assert_int_equal(pmap_client_set(g_port, true, 300005, 1, PMAP_IPPROTO_TCP, 5556), 0);
	assert_int_equal(getport(300005, 1, PMAP_IPPROTO_TCP), 5555);
	assert_int_equal(pmap_client_set(g_port, false, 300005, 1, PMAP_IPPROTO_TCP, 0), 1);
	assert_int_equal(getport(300005, 1, PMAP_IPPROTO_TCP), 0);

	/* an rpcbind answers on the portmap port: register with it */
	portmap_clear();
	nfsgw_settings_default(&s);
	snprintf(s.bind_addr, sizeof(s.bind_addr), "127.0.0.1");
	s.nfs_port = 3049;
	s.mount_port = 3048;
	s.portmap_port = g_port;
	snprintf(s.state_dir, sizeof(s.state_dir), "%s", g_dir);
	assert_int_equal(nfsgw_init(&s), 0);
	assert_int_equal(nfsgw_builtin_portmap(), 0);
	assert_int_equal(getport(100003, 3, PMAP_IPPROTO_TCP), 3049);
	assert_int_equal(getport(100005, 3, PMAP_IPPROTO_UDP), 3048);
	assert_int_equal(getport(100005, 1, PMAP_IPPROTO_TCP), 3048);
	/* shutdown withdraws them */
	nfsgw_shutdown();
	assert_int_equal(getport(100003, 3, PMAP_IPPROTO_TCP), 0);
	assert_int_equal(getport(100005, 3, PMAP_IPPROTO_UDP), 0);

	/* nobody answers: the built-in one, with our programs in its table */
	s.portmap_port = dead;
	assert_int_equal(nfsgw_init(&s), 0);
	assert_int_equal(nfsgw_builtin_portmap(), 1);
	assert_int_equal(getport(100003, 3, PMAP_IPPROTO_TCP), 3049);
	assert_int_equal(getport(PMAP_PROG, 2, PMAP_IPPROTO_UDP), dead);
	nfsgw_shutdown();
	{
		char key[400];
		snprintf(key, sizeof(key), "%s/nfs-fh.key", g_dir);
		unlink(key);
	}
}

static void test_path_normalise(void **state)
{
	char out[64];
	(void)state;
	assert_int_equal(mount_path_normalise("//a//b/./c/", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/b/c");
	assert_int_equal(mount_path_normalise("/", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(mount_path_normalise("/a/../b", out, sizeof(out)), -1);
	assert_int_equal(mount_path_normalise("a/b", out, sizeof(out)), -1);
	assert_int_equal(mount_path_normalise("/..", out, sizeof(out)), -1);
	assert_int_equal(mount_path_normalise("/a/...", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/...");
	assert_int_equal(mount_path_normalise("/aaaaaaaaaa", out, 8), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uaddr),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_path_normalise),
		cmocka_unit_test_setup_teardown(test_pmap_v2_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rpcb_v3v4_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_and_policy, setup, teardown),
	};
	int ret;

	signal(SIGPIPE, SIG_IGN);
	workpool_init(2);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	workpool_shutdown();
	return ret;
}
