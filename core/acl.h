/* acl.h - initiator address ACLs (tgtadm -I): ALL, IPv4, IPv6, CIDR.
 * Pure functions; unit tested.  Name ACLs (-Q) are exact string matches and
 * live in the registry. */
#ifndef RS_ACL_H
#define RS_ACL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct acl_addr {
	bool all;                  /* "ALL" */
	int family;                /* AF_INET / AF_INET6 */
	uint8_t addr[16];          /* network byte order, v4 in the first 4 bytes */
	int prefix;                /* 0..32 / 0..128 */
	char text[64];             /* canonical form for show/dump */
};

/* Parse "ALL", "192.168.1.5", "10.0.0.0/8", "::1", "fe80::/10", "[::1]".
 * 0 on success, -1 with a message in err on failure. */
int acl_addr_parse(const char *spec, struct acl_addr *out, char *err, size_t errlen);
/* Does the peer address match?  IPv4-mapped IPv6 peers match IPv4 rules. */
bool acl_addr_match(const struct acl_addr *a, const struct sockaddr *peer);
/* Printable peer address ("127.0.0.1" / "::1", no port). */
void acl_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len);

#endif
