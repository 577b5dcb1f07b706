/* test_companion_json.c - the companion's JSON writer and reader
 * (companion/json.c) and the probe's JSON round trip (companion/probe_json.c).
 *
 * The companion is not part of libringstor.a: its sources are compiled into
 * this test directly, so the generic test rule of the Makefile links it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "companion/fingerprint.c"
#include "companion/json.c"
#include "companion/probe_host.c"
#include "companion/probe_json.c"
#include "companion/run.c"

static struct json_value *parse(const char *s)
{
	char err[128];
	return json_parse(s, strlen(s), err, sizeof(err));
}

static void test_writer_nesting_and_escapes(void **state)
{
	(void)state;
	struct json_writer w;
	jw_init(&w);
	jw_begin_object(&w, NULL);
	jw_string(&w, "s", "a\"b\\c\n\t\x01");
	jw_u64(&w, "big", UINT64_MAX);
	jw_i64(&w, "neg", -42);
	jw_bool(&w, "t", true);
	jw_null(&w, "n");
	jw_string(&w, "nullstr", NULL);
	jw_begin_array_compact(&w, "flags");
	jw_string(&w, NULL, "fpu");
	jw_string(&w, NULL, "sse2");
	jw_end_array(&w);
	jw_begin_array(&w, "empty");
	jw_end_array(&w);
	jw_begin_object(&w, "o");
	jw_end_object(&w);
	jw_end_object(&w);
	char *out = jw_finish(&w);
	assert_non_null(out);
	assert_non_null(strstr(out, "\"s\": \"a\\\"b\\\\c\\n\\t\\u0001\""));
	assert_non_null(strstr(out, "\"big\": 18446744073709551615"));
	assert_non_null(strstr(out, "\"flags\": [\"fpu\", \"sse2\"]"));
	assert_non_null(strstr(out, "\"empty\": []"));
	assert_non_null(strstr(out, "\"o\": {}"));

	/* and it reads back */
	struct json_value *v = parse(out);
	assert_non_null(v);
	assert_string_equal(json_str(json_get(v, "s")), "a\"b\\c\n\t\x01");
	uint64_t u;
	assert_true(json_u64(json_get(v, "big"), &u));
	assert_true(u == UINT64_MAX);
	int64_t i;
	assert_true(json_i64(json_get(v, "neg"), &i));
	assert_int_equal(i, -42);
	assert_false(json_u64(json_get(v, "neg"), &u));
	bool b = false;
	assert_true(json_bool(json_get(v, "t"), &b));
	assert_true(b);
	assert_int_equal(json_get(v, "n")->type, JSON_NULL);
	assert_null(json_str(json_get(v, "nullstr")));
	assert_int_equal(json_len(json_get(v, "flags")), 2);
	assert_string_equal(json_str(json_at(json_get(v, "flags"), 1)), "sse2");
	assert_null(json_at(json_get(v, "flags"), 2));
	assert_int_equal(json_len(json_get(v, "empty")), 0);
	assert_null(json_get(v, "missing"));
	json_free(v);
	free(out);
}

static void test_writer_misuse(void **state)
{
	(void)state;
	struct json_writer w;
	jw_init(&w);
	assert_null(jw_finish(&w)); /* nothing written */
	jw_begin_object(&w, NULL);
	assert_null(jw_finish(&w)); /* unclosed */
	jw_begin_object(&w, NULL);
	jw_end_object(&w);
	jw_end_object(&w); /* one close too many */
	assert_null(jw_finish(&w));
	jw_string(&w, NULL, "a");
	jw_string(&w, NULL, "b"); /* two top-level values */
	assert_null(jw_finish(&w));
	for (int k = 0; k < JSON_MAX_DEPTH + 2; k++)
		jw_begin_array(&w, NULL);
	assert_null(jw_finish(&w)); /* too deep */
}

static void test_reader_values(void **state)
{
	(void)state;
	struct json_value *v = parse("  [1, -0, 2.5e3, \"\\u00e9\\ud83d\\ude00\\/\", true, false, null, {}, []]  ");
	assert_non_null(v);
	assert_int_equal(v->type, JSON_ARRAY);
	assert_int_equal(json_len(v), 9);
	int64_t i;
	assert_true(json_i64(json_at(v, 0), &i));
	assert_int_equal(i, 1);
	assert_int_equal(json_at(v, 2)->type, JSON_NUMBER);
	uint64_t u;
	assert_false(json_u64(json_at(v, 2), &u)); /* not an integer */
	assert_string_equal(json_str(json_at(v, 3)), "\xc3\xa9\xf0\x9f\x98\x80/");
	json_free(v);

	v = parse("{\"a\": {\"b\": [ {\"c\": \"d\"} ]}}");
	assert_non_null(v);
	assert_string_equal(json_str(json_get(json_at(json_get(json_get(v, "a"), "b"), 0), "c")), "d");
	/* accessors tolerate NULL and wrong types */
	assert_null(json_get(json_get(v, "a"), NULL));
	assert_null(json_at(v, 0));
	assert_null(json_str(v));
	assert_int_equal(json_len(NULL), 0);
	json_free(v);

	/* numbers too large for 64 bits are refused, not wrapped */
	v = parse("18446744073709551616");
	assert_non_null(v);
	assert_false(json_u64(v, &u));
	json_free(v);
}

static void test_reader_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "   ", "{", "[", "[1,]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}", "[1 2]", "\"abc",
		"\"a\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\u0000\"",
		"\"tab\there\"", "01", "-", "1.", "1e", "+1", "tru", "nul", "[1] x", "{} {}", "[\"a\"\n",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char err[128] = "";
		struct json_value *v = json_parse(bad[k], strlen(bad[k]), err, sizeof(err));
		if (v)
			fail_msg("accepted bad JSON #%zu: %s", k, bad[k]);
		assert_true(strncmp(err, "offset ", 7) == 0);
	}
	/* nesting deeper than JSON_MAX_DEPTH */
	char deep[256];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	deep[200] = '\0';
	assert_null(parse(deep));
	/* an embedded NUL ends the document: trailing data */
	char err[64];
	assert_null(json_parse("[1]\0[2]", 7, err, sizeof(err)));
	assert_null(json_parse(NULL, 0, err, sizeof(err)));
}

static void test_reader_fuzz_no_crash(void **state)
{
	(void)state;
	/* Every prefix and every single-byte corruption of a valid document
	 * must parse or fail cleanly (ASan build catches overreads). */
	const char *doc = "{\"k\": [1, 2.5, \"s\\u00e9\", true, null, {\"x\": -3}], \"e\": \"\\n\"}";
	size_t n = strlen(doc);
	char *buf = malloc(n);
	assert_non_null(buf);
	for (size_t len = 0; len <= n; len++) {
		memcpy(buf, doc, len);
		json_free(json_parse(buf, len, NULL, 0));
	}
	static const char subs[] = "{}[]\",:\\u0 x";
	for (size_t pos = 0; pos < n; pos++)
		for (size_t s = 0; s < sizeof(subs) - 1; s++) {
			memcpy(buf, doc, n);
			buf[pos] = subs[s];
			json_free(json_parse(buf, n, NULL, 0));
		}
	free(buf);
}

static void fill_host(struct probe_host *h)
{
	memset(h, 0, sizeof(*h));
	h->version = PROBE_FORMAT_VERSION;
	h->hostname = xstrdup("hostA");
	h->boot_id = xstrdup("boot-1");
	h->arch = xstrdup("x86_64");
	h->cpu_model = xstrdup("AMD EPYC");
	strv_push(&h->cpu_flags, &h->ncpu_flags, "fpu");
	strv_push(&h->cpu_flags, &h->ncpu_flags, "avx2");
	h->kvm = true;
	h->qemu_version = xstrdup("QEMU emulator version 7.2.0");
	h->mem_known = true;
	h->mem_available_kib = 8u << 20;
	strv_push(&h->bridges, &h->nbridges, "br0");
	h->addrs = calloc(1, sizeof(*h->addrs));
	h->addrs[0] = (struct probe_addr){ xstrdup("veth0"), 4, xstrdup("10.77.0.1"), 24, xstrdup("10.77.0.0/24") };
	h->naddrs = 1;
	h->disks = calloc(3, sizeof(*h->disks));
	h->ndisks = 3;
	struct probe_disk *d = &h->disks[0];
	d->spec = xstrdup("iscsi://10.78.0.10:3260/iqn.2026-11.io.ringstor:test/1");
	d->kind = DISK_ISCSI;
	d->portal = xstrdup("10.78.0.10:3260");
	d->target = xstrdup("iqn.2026-11.io.ringstor:test");
	d->lun = 1;
	d->naa = xstrdup("6525400a2870d5bcc61d612f4c2cffb8");
	d->serial = xstrdup("974cd96a2870d5bc");
	static unsigned char img[200000];
	d->size = sizeof(img);
	d->block_size = 4096;
	for (size_t k = 0; k < sizeof(img); k++)
		img[k] = (unsigned char)(k * 7);
	assert_int_equal(fingerprint_buffer(img, sizeof(img), &d->fp), 0);
	d = &h->disks[1];
	d->spec = xstrdup("nfs://srv/export/vm.img");
	d->kind = DISK_NFS;
	d->server = xstrdup("srv");
	d->export_path = xstrdup("/export");
	d->file = xstrdup("/vm.img");
	d->fh = xstrdup("0108000000");
	d->fileid = 1234567890123ull;
	d = &h->disks[2];
	d->spec = xstrdup("/var/lib/vm.img");
	d->kind = DISK_LOCAL;
	d->error = xstrdup("open /var/lib/vm.img: Permission denied");
}

static void test_probe_roundtrip(void **state)
{
	(void)state;
	struct probe_host a, b;
	fill_host(&a);
	char *js = probe_to_json(&a);
	assert_non_null(js);
	char err[256];
	assert_int_equal(probe_from_json(&b, js, strlen(js), err, sizeof(err)), 0);
	assert_string_equal(b.hostname, "hostA");
	assert_string_equal(b.boot_id, "boot-1");
	assert_string_equal(b.arch, "x86_64");
	assert_string_equal(b.cpu_model, "AMD EPYC");
	assert_int_equal(b.ncpu_flags, 2);
	assert_string_equal(b.cpu_flags[1], "avx2");
	assert_true(b.kvm && !b.xen && !b.libvirt);
	assert_string_equal(b.qemu_version, "QEMU emulator version 7.2.0");
	assert_true(b.mem_known);
	assert_true(b.mem_available_kib == 8u << 20);
	assert_int_equal(b.nbridges, 1);
	assert_int_equal(b.naddrs, 1);
	assert_string_equal(b.addrs[0].subnet, "10.77.0.0/24");
	assert_int_equal(b.addrs[0].prefix, 24);
	assert_int_equal(b.ndisks, 3);
	assert_int_equal(b.disks[0].kind, DISK_ISCSI);
	assert_string_equal(b.disks[0].naa, a.disks[0].naa);
	assert_int_equal(b.disks[0].lun, 1);
	assert_true(b.disks[0].size == 200000);
	assert_int_equal(b.disks[0].block_size, 4096);
	assert_true(b.disks[0].fp.valid);
	assert_string_equal(b.disks[0].fp.sha256, a.disks[0].fp.sha256);
	assert_int_equal(b.disks[0].fp.sp.n, a.disks[0].fp.sp.n);
	assert_int_equal(fingerprint_diff(&a.disks[0].fp, &b.disks[0].fp, NULL), 0);
	assert_int_equal(b.disks[1].kind, DISK_NFS);
	assert_true(b.disks[1].fileid == 1234567890123ull);
	assert_string_equal(b.disks[1].fh, "0108000000");
	assert_false(b.disks[1].fp.valid);
	assert_int_equal(b.disks[2].kind, DISK_LOCAL);
	assert_string_equal(b.disks[2].error, "open /var/lib/vm.img: Permission denied");

	/* the text form mentions the essentials */
	char *txt = probe_to_text(&b);
	assert_non_null(txt);
	assert_non_null(strstr(txt, "naa:       6525400a2870d5bcc61d612f4c2cffb8"));
	assert_non_null(strstr(txt, "error:     open /var/lib/vm.img"));
	free(txt);
	probe_host_free(&b);

	/* a probe from another format version is refused with a reason */
	char *p = strstr(js, "\"format\": 1");
	assert_non_null(p);
	p[10] = '7';
	assert_int_equal(probe_from_json(&b, js, strlen(js), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "format 7"));
	free(js);
	probe_host_free(&a);
}

static void test_probe_from_bad_json(void **state)
{
	(void)state;
	struct probe_host h;
	char err[256];
	static const char *const bad[] = {
		"not json",
		"[]",
		"{\"hostname\": \"x\"}",
		"{\"format\": 1, \"disks\": [42]}",
		"{\"format\": 1, \"disks\": [{\"kind\": \"iscsi\"}]}",
		"{\"format\": 1, \"disks\": [{\"spec\": \"x\", \"fingerprint\": {\"plan\": \"p\", \"sha256\": \"ab\", "
		"\"samples\": []}}]}",
		"{\"format\": 1, \"disks\": [{\"spec\": \"x\", \"fingerprint\": {\"plan\": \"p\", \"sha256\": "
		"\"0000000000000000000000000000000000000000000000000000000000000000\", \"samples\": [[0, 99999999, "
		"\"0000000000000000\"]]}}]}",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		err[0] = '\0';
		if (probe_from_json(&h, bad[k], strlen(bad[k]), err, sizeof(err)) == 0)
			fail_msg("accepted bad probe #%zu", k);
		assert_true(err[0] != '\0');
	}
	/* unknown members and unusable addresses are ignored */
	const char *ok = "{\"format\": 1, \"future\": {\"x\": 1}, \"addresses\": [{\"family\": 5}], \"disks\": []}";
	assert_int_equal(probe_from_json(&h, ok, strlen(ok), err, sizeof(err)), 0);
	assert_int_equal(h.naddrs, 0);
	probe_host_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_nesting_and_escapes),
		cmocka_unit_test(test_writer_misuse),
		cmocka_unit_test(test_reader_values),
		cmocka_unit_test(test_reader_rejects),
		cmocka_unit_test(test_reader_fuzz_no_crash),
		cmocka_unit_test(test_probe_roundtrip),
		cmocka_unit_test(test_probe_from_bad_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
