/* acl.c - initiator address ACLs (tgtadm -I): "ALL", IPv4/IPv6 hosts, CIDR.
 *
 * A rule is kept as (family, network address, prefix length).  Matching is a
 * prefix comparison over the address bytes.  IPv4 peers that reach us over an
 * AF_INET6 socket arrive as IPv4-mapped addresses (::ffff:a.b.c.d, RFC 4291
 * 2.5.5.2); they are compared as plain IPv4 so that one "-I 10.0.0.0/8" rule
 * works whatever socket family the portal uses.  A rule written in mapped form
 * ("::ffff:10.0.0.0/104") is normalised to its IPv4 equivalent for the same
 * reason.
 */
#include "acl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void acl_err(char *err, size_t errlen, const char *fmt, const char *spec)
{
	if (err && errlen)
		snprintf(err, errlen, fmt, spec);
}

/* Clear every bit past prefix so that "10.1.2.3/8" is stored as 10.0.0.0/8. */
static void mask_addr(uint8_t *addr, int nbytes, int prefix)
{
	for (int i = 0; i < nbytes; i++) {
		int bits = prefix - i * 8;
		if (bits >= 8)
			continue;
		if (bits <= 0)
			addr[i] = 0;
		else
			addr[i] &= (uint8_t)(0xff << (8 - bits));
	}
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;

	if (full && memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest) {
		uint8_t m = (uint8_t)(0xff << (8 - rest));
		if ((a[full] & m) != (b[full] & m))
			return false;
	}
	return true;
}

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void acl_canon_text(struct acl_addr *a)
{
	char buf[INET6_ADDRSTRLEN];
	int full = a->family == AF_INET ? 32 : 128;

	if (a->all) {
		snprintf(a->text, sizeof(a->text), "ALL");
		return;
	}
	if (!inet_ntop(a->family, a->addr, buf, sizeof(buf)))
		snprintf(buf, sizeof(buf), "?");
	if (a->prefix == full)
		snprintf(a->text, sizeof(a->text), "%s", buf);
	else
		snprintf(a->text, sizeof(a->text), "%s/%d", buf, a->prefix);
}

int acl_addr_parse(const char *spec, struct acl_addr *out, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 8];
	const char *slash, *hs, *he;
	int prefix = -1;

	if (!spec || !*spec) {
		acl_err(err, errlen, "empty initiator address%s", "");
		return -1;
	}
	memset(out, 0, sizeof(*out));
	if (strcasecmp(spec, "ALL") == 0) {
		out->all = true;
		out->family = AF_UNSPEC;
		acl_canon_text(out);
		return 0;
	}
	if (strlen(spec) >= sizeof(host)) {
		acl_err(err, errlen, "invalid initiator address '%.80s': too long", spec);
		return -1;
	}
	slash = strchr(spec, '/');
	if (slash) {
		const char *p = slash + 1;
		char *end;
		long v;

		/* strtol accepts signs and spaces; a prefix length is digits only */
		if (!*p || strlen(p) > 3) {
			acl_err(err, errlen, "invalid initiator address '%s': bad prefix length", spec);
			return -1;
		}
		for (const char *q = p; *q; q++) {
			if (!isdigit((unsigned char)*q)) {
				acl_err(err, errlen, "invalid initiator address '%s': bad prefix length", spec);
				return -1;
			}
		}
		v = strtol(p, &end, 10);
		prefix = (int)v;
		he = slash;
	} else {
		he = spec + strlen(spec);
	}
	hs = spec;
	/* "[::1]" and "[fe80::]/10": brackets as in URLs/portals (RFC 3986 3.2.2) */
	if (*hs == '[') {
		if (he - hs < 2 || he[-1] != ']') {
			acl_err(err, errlen, "invalid initiator address '%s': unbalanced '['", spec);
			return -1;
		}
		hs++;
		he--;
	}
	if (he <= hs) {
		acl_err(err, errlen, "invalid initiator address '%s'", spec);
		return -1;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (strchr(host, '%')) {
		acl_err(err, errlen, "invalid initiator address '%s': zone ids are not supported", spec);
		return -1;
	}
	if (spec[0] != '[' && inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
	} else {
		acl_err(err, errlen, "invalid initiator address '%s': not an IPv4/IPv6 address, CIDR or ALL", spec);
		return -1;
	}
	int full = out->family == AF_INET ? 32 : 128;
	if (prefix < 0)
		prefix = full;
	if (prefix > full) {
		acl_err(err, errlen, "invalid initiator address '%s': prefix length out of range", spec);
		return -1;
	}
	out->prefix = prefix;
	/* ::ffff:a.b.c.d[/96+n] is the IPv4 rule a.b.c.d[/n] */
	if (out->family == AF_INET6 && prefix >= 96 &&
	    memcmp(out->addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		memmove(out->addr, out->addr + 12, 4);
		memset(out->addr + 4, 0, 12);
		out->family = AF_INET;
		out->prefix = prefix - 96;
	}
	mask_addr(out->addr, out->family == AF_INET ? 4 : 16, out->prefix);
	acl_canon_text(out);
	return 0;
}

/* Reduce a peer to (family, address bytes); mapped v6 becomes v4. */
static int peer_bytes(const struct sockaddr *peer, uint8_t *addr)
{
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)peer;
		memcpy(addr, &s4->sin_addr, 4);
		return AF_INET;
	}
	if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)peer;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memcpy(addr, s6->sin6_addr.s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(addr, &s6->sin6_addr, 16);
		return AF_INET6;
	}
	return AF_UNSPEC;
}

bool acl_addr_match(const struct acl_addr *a, const struct sockaddr *peer)
{
	uint8_t addr[16];
	int fam;

	if (!a)
		return false;
	if (a->all)
		return true;
	if (!peer)
		return false;
	fam = peer_bytes(peer, addr);
	if (fam != a->family)
		return false;
	return prefix_equal(addr, a->addr, a->prefix);
}

void acl_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	uint8_t addr[16];
	int fam;

	if (!buf || !len)
		return;
	buf[0] = '\0';
	if (!sa) {
		snprintf(buf, len, "-");
		return;
	}
	fam = peer_bytes(sa, addr);
	if (fam == AF_UNSPEC || !inet_ntop(fam, addr, buf, (socklen_t)len))
		snprintf(buf, len, "-");
}
