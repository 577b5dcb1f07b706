/* scsi_spc.c - SPC-4 primary commands: TEST UNIT READY, REQUEST SENSE,
 * INQUIRY (standard data and VPD pages), MODE SENSE/SELECT, REPORT LUNS and
 * REPORT SUPPORTED OPERATION CODES.
 *
 * Every Data-In here is an "allocation length" transfer (SPC-4 4.2.5.6): the
 * complete parameter data is built, then clipped to the allocation length;
 * length fields inside the data always describe the complete data.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"
#include "scsi_xcopy.h"

/* ------------------------------------------------------------------------ */

void spc_test_unit_ready(struct scsi_cmd *cmd)
{
	/* SPC-4 6.37: the medium is ready; an ejected removable medium was
	 * already reported (NOT READY 3A/00) by the dispatcher. */
	cmd->status = SAM_STAT_GOOD;
	scsi_cmd_complete(cmd);
}

/* SPC-4 6.39 REQUEST SENSE: returns, as parameter data, the sense a
 * command would get now - a pending unit attention (consumed), LOGICAL UNIT
 * NOT SUPPORTED for a LUN without an LU, else NO SENSE. */
void spc_request_sense(struct scsi_cmd *cmd)
{
	bool desc = cmd->cdb[1] & 0x01;
	uint32_t alloc = cmd->cdb[4];
	uint8_t key = SK_NO_SENSE, asc = 0, ascq = 0;
	uint8_t *buf;
	uint32_t n;

	if (!cmd->lu) {
		key = SK_ILLEGAL_REQUEST;
		asc = ASC_LU_NOT_SUPPORTED;
	} else if (scsi_lu_ua_pop(cmd->lu, scsi_nexus_id(cmd), &asc, &ascq)) {
		key = SK_UNIT_ATTENTION;
	}
	buf = scsi_data_in_alloc(cmd, 18);
	if (!buf) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		scsi_cmd_complete(cmd);
		return;
	}
	if (desc) {
		/* Descriptor format (SPC-4 4.5.2), no descriptors. */
		buf[0] = 0x72;
		buf[1] = key;
		buf[2] = asc;
		buf[3] = ascq;
		buf[7] = 0;
		n = 8;
	} else {
		n = scsi_build_sense(buf, key, asc, ascq);
	}
	scsi_data_in_done(cmd, n, alloc);
}

/* ------------------------------------------------------------------------ */
/* INQUIRY (SPC-4 6.6) and VPD pages (SPC-4 7.8, SBC-3 6.6)                  */
/* ------------------------------------------------------------------------ */

#define INQ_BUF 1024

static const uint8_t supported_vpd[] = { 0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb2 };

static uint8_t periph(const struct scsi_cmd *cmd)
{
	/* Qualifier 000b + type 00h (direct access block device), or qualifier
	 * 011b + type 1Fh: "not capable of supporting a device on this LUN". */
	return cmd->lu ? 0x00 : 0x7f;
}

static uint32_t inquiry_standard(struct scsi_cmd *cmd, uint8_t *b)
{
	const struct scsi_lu *lu = cmd->lu;
	/* Version descriptors (SPC-4 table 142): SAM-5, SPC-4, SBC-3, iSCSI. */
	static const uint16_t vdesc[] = { 0x00a0, 0x0460, 0x04c0, 0x0960 };
	size_t i;

	b[0] = periph(cmd);
	b[1] = lu && lu->removable ? 0x80 : 0x00;   /* RMB (SPC-4 6.6.2) */
	b[2] = 0x06;            /* VERSION: SPC-4 */
	b[3] = 0x12;            /* NORMACA=0, HISUP=1, RESPONSE DATA FORMAT=2 */
	/* TPGS=01b: implicit ALUA (SPC-4 5.15; REPORT TARGET PORT GROUPS, no
	 * SET TARGET PORT GROUPS), 3PC=1: EXTENDED COPY (SPC-4 6.4). */
	b[5] = lu ? 0x10 | 0x08 : 0x00;
	b[6] = 0x00;
	b[7] = 0x02;            /* CMDQUE: full task management model */
	memcpy(&b[8], lu ? lu->vendor : "RINGSTOR", 8);
	memcpy(&b[16], lu ? lu->product : "VIRTUAL-DISK    ", 16);
	memcpy(&b[32], lu ? lu->revision : "0001", 4);
	for (i = 0; i < sizeof(vdesc) / sizeof(vdesc[0]); i++)
		put_be16(&b[58 + 2 * i], vdesc[i]);
	b[4] = 96 - 5;          /* ADDITIONAL LENGTH */
	return 96;
}

/* Device Identification designator header (SPC-4 7.8.6.1). */
static uint8_t *designator(uint8_t *p, uint8_t proto_codeset, uint8_t piv_assoc_type,
			   uint8_t len)
{
	p[0] = proto_codeset;
	p[1] = piv_assoc_type;
	p[2] = 0;
	p[3] = len;
	return p + 4;
}

/* SCSI name string designator (type 8, code set 3 UTF-8, iSCSI, PIV=1)
 * with the given PIV/ASSOCIATION/TYPE byte.  At most 255 - 4 name bytes. */
static uint8_t *name_designator(uint8_t *p, uint8_t piv_assoc_type, const char *name, size_t len)
{
	size_t padded;
	uint8_t *d;

	if (len > 250)
		len = 250;
	padded = (len + 1 + 3) & ~(size_t)3;    /* room for the NUL, multiple of 4 */
	d = designator(p, 0x53, piv_assoc_type, (uint8_t)padded);
	memset(d, 0, padded);
	memcpy(d, name, len);
	return d + padded;
}

static uint32_t vpd_device_id(struct scsi_cmd *cmd, uint8_t *b)
{
	const struct scsi_lu *lu = cmd->lu;
	uint8_t *p = b + 4, *d;
	size_t sl = strlen(lu->serial);

	/* 1. NAA IEEE Registered Extended, LU association, binary. */
	d = designator(p, 0x01, 0x03, 16);
	memcpy(d, lu->naa, 16);
	p = d + 16;

	/* 2. T10 vendor ID based, LU association, ASCII: vendor + serial. */
	d = designator(p, 0x02, 0x01, (uint8_t)(8 + sl));
	memcpy(d, lu->vendor, 8);
	memcpy(d + 8, lu->serial, sl);
	p = d + 8 + sl;

	/* The designators above identify the LU and are the same on every
	 * path; the ones below describe the path this command came through
	 * (SPC-4 7.8.6: association 01b target port, 10b target device),
	 * which is what multipath software (dm-multipath, ESXi NMP with ALUA)
	 * groups paths by.  PROTOCOL IDENTIFIER iSCSI (5), PIV=1. */
	if (cmd->nexus && cmd->nexus->target_port_id) {
		/* 3. Relative target port identifier (SPC-4 7.8.6.5). */
		d = designator(p, 0x51, 0x94, 4);
		put_be16(d + 2, cmd->nexus->target_port_id);
		p = d + 4;
		/* 4. Target port group (SPC-4 7.8.6.6): one group per portal
		 * group, numbered like it (see REPORT TARGET PORT GROUPS). */
		d = designator(p, 0x51, 0x95, 4);
		put_be16(d + 2, cmd->nexus->target_port_id);
		p = d + 4;
	}
	if (cmd->nexus && cmd->nexus->target_port[0]) {
		const char *tp = cmd->nexus->target_port, *sep = strstr(tp, ",t,0x");
		size_t tl = strnlen(tp, sizeof(cmd->nexus->target_port) - 1);
		size_t dl = sep ? (size_t)(sep - tp) : tl;

		/* 5. SCSI name string, target port: "<iqn>,t,0x<tpgt>"
		 * (SPC-4 7.8.6.11: UTF-8, null terminated, padded to a multiple
		 * of 4 bytes; RFC 7143 13.4 / iSCSI port names). */
		p = name_designator(p, 0x98, tp, tl);
		/* 6. SCSI name string, target device: "<iqn>". */
		p = name_designator(p, 0xa8, tp, dl);
	}
	put_be16(&b[2], (uint16_t)(p - b - 4));
	return (uint32_t)(p - b);
}

/* Third-party copy descriptor header (SPC-4 7.8.17): type, length (a
 * multiple of 4, excluding the 4-byte header). */
static uint8_t *tpc_desc(uint8_t *p, uint16_t type, uint16_t len)
{
	put_be16(p, type);
	put_be16(p + 2, len);
	return p + 4;
}

/* SPC-4 7.8.17 Third-party Copy VPD page, for the EXTENDED COPY (LID1)
 * copy manager of target/scsi_xcopy.c, with the limits it enforces. */
static uint32_t vpd_third_party_copy(struct scsi_cmd *cmd, uint8_t *b)
{
	/* Supported commands: EXTENDED COPY (LID1) and RECEIVE COPY RESULTS
	 * COPY STATUS / OPERATING PARAMETERS / FAILED SEGMENT DETAILS. */
	static const uint8_t cmds[] = {
		OP_EXTENDED_COPY, 1, XCOPY_SA_LID1,
		OP_RECEIVE_COPY_RESULTS, 3, RCR_SA_COPY_STATUS, RCR_SA_OPERATING_PARAMS,
		RCR_SA_FAILED_SEGMENT,
	};
	uint8_t *p = b + 4, *d;
	uint16_t len;
	size_t i;
	(void)cmd;

	/* Supported Commands (0001h). */
	len = (uint16_t)((1 + sizeof(cmds) + 3) & ~3u);
	d = tpc_desc(p, 0x0001, len);
	d[0] = (uint8_t)sizeof(cmds);
	memcpy(d + 1, cmds, sizeof(cmds));
	p = d + len;

	/* Parameter Data (0004h): SPC-4 6.22.4 OPERATING PARAMETERS limits. */
	d = tpc_desc(p, 0x0004, 0x1c);
	put_be16(d + 2, XCOPY_MAX_TARGET_DESC);     /* MAXIMUM CSCD DESCRIPTOR COUNT */
	put_be16(d + 4, XCOPY_MAX_SEGMENT_DESC);    /* MAXIMUM SEGMENT DESCRIPTOR COUNT */
	put_be32(d + 6, XCOPY_MAX_DESC_LIST_LEN);   /* MAXIMUM DESCRIPTOR LIST LENGTH */
	put_be32(d + 10, XCOPY_MAX_INLINE_DATA);    /* MAXIMUM INLINE DATA LENGTH */
	p = d + 0x1c;

	/* Supported Descriptors (0008h): segment and CSCD descriptor codes. */
	len = (uint16_t)((1 + xcopy_nr_impl_desc_codes + 3) & ~(size_t)3);
	d = tpc_desc(p, 0x0008, len);
	d[0] = (uint8_t)xcopy_nr_impl_desc_codes;
	for (i = 0; i < xcopy_nr_impl_desc_codes; i++)
		d[1 + i] = xcopy_impl_desc_codes[i];
	p = d + len;

	/* Supported CSCD Descriptor IDs (000Ch): none (LID1 uses the index). */
	d = tpc_desc(p, 0x000c, 4);
	p = d + 4;

	/* General Copy Operations (8001h). */
	d = tpc_desc(p, 0x8001, 0x20);
	put_be32(d + 0, XCOPY_TOTAL_CONCURRENT);    /* TOTAL CONCURRENT COPIES */
	put_be32(d + 4, XCOPY_MAX_CONCURRENT);      /* MAXIMUM IDENTIFIED CONCURRENT COPIES */
	put_be32(d + 8, XCOPY_MAX_SEGMENT_LEN);     /* MAXIMUM SEGMENT LENGTH */
	d[12] = XCOPY_DATA_SEG_GRAN_LOG2;           /* DATA SEGMENT GRANULARITY */
	d[13] = XCOPY_INLINE_GRAN_LOG2;             /* INLINE DATA GRANULARITY */
	p = d + 0x20;

	put_be16(&b[2], (uint16_t)(p - b - 4));
	return (uint32_t)(p - b);
}

static uint32_t vpd_block_limits(struct scsi_cmd *cmd, uint8_t *b)
{
	uint32_t bs = cmd->lu->block_size;

	uint32_t gran = bs < 4096 ? 4096 / bs : 1;

	put_be16(&b[2], 0x3c);                       /* SBC-3 6.6.3 page length */
	b[4] = 0x00;                                 /* WSNZ=0: WRITE SAME 0 = to the end */
	b[5] = SCSI_MAX_CAW_BLOCKS;                  /* MAXIMUM COMPARE AND WRITE LENGTH */
	put_be16(&b[6], (uint16_t)gran);             /* OPTIMAL TRANSFER LENGTH GRANULARITY */
	put_be32(&b[8], SCSI_MAX_XFER_BYTES / bs);   /* MAXIMUM TRANSFER LENGTH */
	put_be32(&b[12], SCSI_MAX_XFER_BYTES / bs);  /* OPTIMAL TRANSFER LENGTH */
	put_be32(&b[16], SCSI_MAX_XFER_BYTES / bs);  /* MAXIMUM PREFETCH LENGTH */
	if (scsi_lu_thin(cmd->lu)) {
		put_be32(&b[20], SCSI_MAX_UNMAP_LBA_COUNT);
		put_be32(&b[24], SCSI_MAX_UNMAP_DESCRIPTORS);
		put_be32(&b[28], gran);                  /* OPTIMAL UNMAP GRANULARITY */
		/* UGAVALID=0: no alignment requirement */
	}
	put_be64(&b[36], SCSI_MAX_WRITE_SAME_BLOCKS);     /* MAXIMUM WRITE SAME LENGTH */
	/* SBC-4 6.6.4: WRITE ATOMIC (16) up to MAXIMUM ATOMIC TRANSFER LENGTH,
	 * ATOMIC ALIGNMENT 0 and ATOMIC TRANSFER LENGTH GRANULARITY 0 (none);
	 * no atomic boundaries (WRITE ATOMIC (32) is not implemented). */
	put_be32(&b[44], SCSI_MAX_ATOMIC_BYTES / bs);
	return 64;
}

static uint32_t vpd_block_dev_chars(struct scsi_cmd *cmd, uint8_t *b)
{
	(void)cmd;
	put_be16(&b[2], 0x3c);
	put_be16(&b[4], 0x0001);                     /* MEDIUM ROTATION RATE: non-rotating */
	return 64;
}

static uint32_t vpd_lbp(struct scsi_cmd *cmd, uint8_t *b)
{
	/* SBC-3 6.6.4 Logical Block Provisioning.  Thin LUs: LBPU (UNMAP),
	 * LBPWS / LBPWS10 (WRITE SAME 16/10 with UNMAP), LBPRZ (unmapped blocks
	 * read as zeros), no anchored state (ANC_SUP=0), PROVISIONING TYPE
	 * 010b thin.  Others: all clear, type not reported. */
	put_be16(&b[2], 4);
	b[4] = 0;                               /* THRESHOLD EXPONENT: no thresholds */
	if (scsi_lu_thin(cmd->lu)) {
		b[5] = 0x80 | 0x40 | 0x20 | 0x04;
		b[6] = 0x02;
	} else {
		b[6] = 0x00;                        /* PROVISIONING TYPE 000b: full */
	}
	return 8;
}

void spc_inquiry(struct scsi_cmd *cmd)
{
	bool evpd = cmd->cdb[1] & 0x01;
	uint8_t page = cmd->cdb[2];
	uint32_t alloc = get_be16(&cmd->cdb[3]);
	uint8_t *b;
	uint32_t n;
	size_t i;

	if (cmd->cdb[1] & 0x02) {               /* CMDDT (obsolete): not supported */
		scsi_fail_cdb(cmd, 1, 1);
		return;
	}
	if (!evpd && page) {                    /* SPC-4 6.6.1 */
		scsi_fail_cdb(cmd, 2, -1);
		return;
	}
	b = scsi_data_in_alloc(cmd, INQ_BUF);
	if (!b) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		scsi_cmd_complete(cmd);
		return;
	}
	if (!evpd) {
		scsi_data_in_done(cmd, inquiry_standard(cmd, b), alloc);
		return;
	}

	b[0] = periph(cmd);
	b[1] = page;
	if (!cmd->lu) {
		/* Only the list of pages (empty but for itself) without an LU. */
		if (page != 0x00) {
			scsi_fail_cdb(cmd, 2, -1);
			return;
		}
		put_be16(&b[2], 1);
		b[4] = 0x00;
		scsi_data_in_done(cmd, 5, alloc);
		return;
	}
	switch (page) {
	case 0x00:  /* Supported VPD pages, ascending order (SPC-4 7.8.13) */
		for (i = 0; i < sizeof(supported_vpd); i++)
			b[4 + i] = supported_vpd[i];
		put_be16(&b[2], (uint16_t)sizeof(supported_vpd));
		n = 4 + (uint32_t)sizeof(supported_vpd);
		break;
	case 0x80: { /* Unit Serial Number (SPC-4 7.8.15) */
		size_t sl = strlen(cmd->lu->serial);
		memcpy(&b[4], cmd->lu->serial, sl);
		put_be16(&b[2], (uint16_t)sl);
		n = 4 + (uint32_t)sl;
		break;
	}
	case 0x83:
		n = vpd_device_id(cmd, b);
		break;
	case 0x8f:
		n = vpd_third_party_copy(cmd, b);
		break;
	case 0xb0:
		n = vpd_block_limits(cmd, b);
		break;
	case 0xb1:
		n = vpd_block_dev_chars(cmd, b);
		break;
	case 0xb2:
		n = vpd_lbp(cmd, b);
		break;
	default:
		scsi_fail_cdb(cmd, 2, -1);
		return;
	}
	scsi_data_in_done(cmd, n, alloc);
}

/* ------------------------------------------------------------------------ */
/* Mode pages (SPC-4 7.5, SBC-3 6.4)                                          */
/* ------------------------------------------------------------------------ */

enum { PC_CURRENT = 0, PC_CHANGEABLE = 1, PC_DEFAULT = 2, PC_SAVED = 3 };

#define MP_CACHING  0x08
#define MP_CONTROL  0x0a
#define MP_IEC      0x1c
#define MP_ALL      0x3f

/* Build one mode page (page code `code`) for page control `pc` into p.
 * Returns its length, or 0 if we do not have that page. */
static uint32_t mode_page(const struct scsi_lu *lu, uint8_t code, int pc, uint8_t *p)
{
	switch (code) {
	case MP_CACHING:  /* SBC-3 6.4.5 */
		memset(p, 0, 20);
		p[0] = MP_CACHING;
		p[1] = 0x12;
		if (pc == PC_CHANGEABLE)
			p[2] = 0x04;                       /* only WCE can change */
		else if (pc == PC_DEFAULT)
			p[2] = 0x04;                       /* write back by default */
		else
			p[2] = atomic_load(&lu->write_cache) ? 0x04 : 0x00;
		return 20;
	case MP_CONTROL:  /* SPC-4 7.5.8 */
		memset(p, 0, 12);
		p[0] = MP_CONTROL;
		p[1] = 0x0a;
		if (pc == PC_CHANGEABLE) {
			p[4] = 0x08;                       /* only SWP can change */
			return 12;
		}
		/* TST=000b (one task set), D_SENSE=0 (fixed format sense). */
		p[3] = 0x10;    /* QUEUE ALGORITHM MODIFIER=1: unrestricted reordering, QERR=00b */
		/* SWP (software write protect): the LU is write protected
		 * while it is set; default off. */
		if (pc == PC_CURRENT && atomic_load(&lu->swp))
			p[4] = 0x08;
		put_be16(&p[8], 0xffff);   /* BUSY TIMEOUT PERIOD: unlimited */
		return 12;
	case MP_IEC:      /* SPC-4 7.5.12 informational exceptions control */
		memset(p, 0, 12);
		p[0] = MP_IEC;
		p[1] = 0x0a;
		if (pc != PC_CHANGEABLE)
			p[2] = 0x08;   /* DEXCPT: no informational exception reporting */
		return 12;
	default:
		return 0;
	}
}

static const uint8_t mode_pages_all[] = { MP_CACHING, MP_CONTROL, MP_IEC };

void spc_mode_sense(struct scsi_cmd *cmd)
{
	const struct scsi_lu *lu = cmd->lu;
	bool six = cmd->cdb[0] == OP_MODE_SENSE_6;
	bool dbd = cmd->cdb[1] & 0x08;
	bool llbaa = !six && (cmd->cdb[1] & 0x10);
	int pc = cmd->cdb[2] >> 6;
	uint8_t page = cmd->cdb[2] & 0x3f, subpage = cmd->cdb[3];
	uint32_t alloc = six ? cmd->cdb[4] : get_be16(&cmd->cdb[7]);
	uint32_t hdr = six ? 4 : 8, off, bdl = 0;
	uint64_t nb = atomic_load(&lu->nr_blocks);
	uint8_t *b;
	size_t i;

	if (pc == PC_SAVED) {
		/* SPC-4 6.11: saved values are not implemented. */
		scsi_set_sense_field(cmd, SK_ILLEGAL_REQUEST, ASC_SAVING_PARAMS_NOT_SUPP, 0x00,
				     true, 2, 7);
		scsi_cmd_complete(cmd);
		return;
	}
	/* We have no subpages: subpage 0, or FFh ("all subpages"). */
	if (subpage != 0x00 && subpage != 0xff) {
		scsi_fail_cdb(cmd, 3, -1);
		return;
	}
	b = scsi_data_in_alloc(cmd, 256);
	if (!b) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		scsi_cmd_complete(cmd);
		return;
	}

	off = hdr;
	if (!dbd) {
		/* SBC-3 6.4.2 block descriptor (zero in the changeable mask). */
		uint8_t *d = b + hdr;
		if (llbaa) {
			bdl = 16;
			if (pc != PC_CHANGEABLE) {
				put_be64(d, nb);
				put_be32(d + 12, lu->block_size);
			}
		} else {
			bdl = 8;
			if (pc != PC_CHANGEABLE) {
				put_be32(d, nb > 0xffffffffull ? 0xffffffffu : (uint32_t)nb);
				put_be24(d + 5, lu->block_size);
			}
		}
		off += bdl;
	}

	if (page == MP_ALL) {
		for (i = 0; i < sizeof(mode_pages_all); i++)
			off += mode_page(lu, mode_pages_all[i], pc, b + off);
	} else {
		uint32_t n = mode_page(lu, page, pc, b + off);
		if (!n) {
			scsi_fail_cdb(cmd, 2, 5);
			return;
		}
		off += n;
	}

	/* Header (SPC-4 7.5.5): DEVICE-SPECIFIC PARAMETER for SBC (SBC-3 6.4.1):
	 * WP (bit 7) for a write-protected LU, DPOFUA (bit 4). */
	if (six) {
		b[0] = (uint8_t)(off - 1);
		b[2] = (uint8_t)((scsi_lu_wp(lu) ? 0x80 : 0) | 0x10);
		b[3] = (uint8_t)bdl;
	} else {
		put_be16(&b[0], (uint16_t)(off - 2));
		b[3] = (uint8_t)((scsi_lu_wp(lu) ? 0x80 : 0) | 0x10);
		b[4] = llbaa && !dbd ? 0x01 : 0x00;    /* LONGLBA */
		put_be16(&b[6], (uint16_t)bdl);
	}
	scsi_data_in_done(cmd, off, alloc);
}

static void param_error(struct scsi_cmd *cmd, uint16_t byte, int bit)
{
	scsi_set_sense_field(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM, 0x00,
			     false, byte, bit);
	scsi_cmd_complete(cmd);
}

static int first_bit(uint8_t v)
{
	int i;
	for (i = 7; i >= 0; i--)
		if (v & (1u << i))
			return i;
	return -1;
}

/* SPC-4 6.9/6.10 MODE SELECT: the caching page's WCE is the only changeable
 * parameter; every other field must carry its current value. */
void spc_mode_select(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	bool six = cmd->cdb[0] == OP_MODE_SELECT_6;
	bool pf = cmd->cdb[1] & 0x10, sp = cmd->cdb[1] & 0x01;
	uint32_t plen = six ? cmd->cdb[4] : get_be16(&cmd->cdb[7]);
	uint32_t hdr = six ? 4 : 8, bdl, off;
	const uint8_t *p = cmd->data_out;
	int new_wce = -1, new_swp = -1;
	bool longlba;

	cmd->xfer_len = plen;
	cmd->xfer_is_write = true;

	if (sp) {                       /* no saved pages */
		scsi_fail_cdb(cmd, 1, 0);
		return;
	}
	if (!pf && plen) {              /* only the SPC page format is understood */
		scsi_fail_cdb(cmd, 1, 4);
		return;
	}
	if (plen == 0) {                /* not an error (SPC-4 6.9) */
		scsi_cmd_complete(cmd);
		return;
	}
	if (!p || cmd->data_out_len < plen || plen < hdr) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0x00);
		return;
	}
	bdl = six ? p[3] : get_be16(&p[6]);
	longlba = !six && (p[4] & 0x01);
	if (bdl != 0 && bdl != (longlba ? 16u : 8u)) {
		param_error(cmd, six ? 3 : 6, -1);
		return;
	}
	if (hdr + bdl > plen) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0x00);
		return;
	}
	if (bdl) {
		/* The block length cannot change; the number of blocks is
		 * ignored (SBC-3 6.4.2 lets a device server not resize). */
		uint32_t blen = longlba ? get_be32(&p[hdr + 12]) : get_be24(&p[hdr + 5]);
		if (blen != lu->block_size) {
			param_error(cmd, (uint16_t)(hdr + (longlba ? 12 : 5)), -1);
			return;
		}
	}

	for (off = hdr + bdl; off < plen;) {
		uint8_t cur[32], chg[32];
		uint32_t len, want, i;
		uint8_t code;

		if (plen - off < 2) {
			scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0x00);
			return;
		}
		code = p[off] & 0x3f;
		if (p[off] & 0x40) {            /* SPF: we have no subpages */
			param_error(cmd, (uint16_t)off, 6);
			return;
		}
		len = p[off + 1];
		if (off + 2 + len > plen) {
			scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0x00);
			return;
		}
		want = mode_page(lu, code, PC_CURRENT, cur);
		if (!want || code == MP_ALL) {
			param_error(cmd, (uint16_t)off, 5);
			return;
		}
		if (len + 2 != want) {
			param_error(cmd, (uint16_t)(off + 1), -1);
			return;
		}
		mode_page(lu, code, PC_CHANGEABLE, chg);
		for (i = 2; i < want; i++) {
			uint8_t diff = (uint8_t)((p[off + i] ^ cur[i]) & ~chg[i]);
			if (diff) {
				param_error(cmd, (uint16_t)(off + i), first_bit(diff));
				return;
			}
		}
		if (code == MP_CACHING)
			new_wce = (p[off + 2] & 0x04) ? 1 : 0;
		if (code == MP_CONTROL)
			new_swp = (p[off + 4] & 0x08) ? 1 : 0;
		off += 2 + len;
	}

	/* All pages valid: apply atomically with respect to this command. */
	if (new_wce >= 0 && (bool)new_wce != atomic_load(&lu->write_cache)) {
		atomic_store(&lu->write_cache, (bool)new_wce);
		/* SPC-4 5.x: other I_T nexuses learn of it through MODE
		 * PARAMETERS CHANGED. */
		if (scsi_lu_event_hook)
			scsi_lu_event_hook(cmd, 0x2a, 0x01);
	}
	if (new_swp >= 0 && (bool)new_swp != atomic_load(&lu->swp)) {
		/* SPC-4 7.5.8 SWP: while set, every command that writes the
		 * medium ends in DATA PROTECT, WRITE PROTECTED (27/00). */
		atomic_store(&lu->swp, (bool)new_swp);
		if (scsi_lu_event_hook)
			scsi_lu_event_hook(cmd, 0x2a, 0x01);
	}
	cmd->status = SAM_STAT_GOOD;
	scsi_cmd_complete(cmd);
}

/* ------------------------------------------------------------------------ */
/* REPORT LUNS (SPC-4 6.33)                                                  */
/* ------------------------------------------------------------------------ */

#define REPORT_LUNS_MAX 16384

/* SAM-5 4.6: single level LUN, peripheral (< 256) or flat space (< 16384). */
static void encode_lun(uint8_t *p, uint64_t lun)
{
	memset(p, 0, 8);
	if (lun < 256) {
		p[1] = (uint8_t)lun;
	} else if (lun < 16384) {
		p[0] = (uint8_t)(0x40 | (lun >> 8));
		p[1] = (uint8_t)lun;
	} else {
		put_be64(p, lun);   /* already a full 8-byte LUN */
	}
}

void spc_report_luns(struct scsi_cmd *cmd)
{
	uint8_t select = cmd->cdb[2];
	uint32_t alloc = get_be32(&cmd->cdb[6]);
	uint64_t stack_luns[64], *luns = stack_luns;
	int total = 0, got, i;
	uint32_t avail, room;
	uint8_t *b;

	if (alloc < 16) {               /* SPC-4 6.33: too small to be useful */
		scsi_fail_cdb(cmd, 6, -1);
		return;
	}
	if (select > 0x02) {            /* 00h all, 01h well known (none), 02h all */
		scsi_fail_cdb(cmd, 2, -1);
		return;
	}
	if (select != 0x01) {
		if (scsi_report_luns_hook) {
			total = scsi_report_luns_hook(cmd, luns, 64);
			if (total > 64) {
				int want = total > REPORT_LUNS_MAX ? REPORT_LUNS_MAX : total;
				luns = malloc(sizeof(*luns) * (size_t)want);
				if (!luns) {
					scsi_set_errno_sense(cmd, -ENOMEM, false);
					scsi_cmd_complete(cmd);
					return;
				}
				total = scsi_report_luns_hook(cmd, luns, want);
				if (total > want)
					total = want;
			}
			if (total < 0)
				total = 0;
		} else if (cmd->lu) {
			luns[0] = cmd->lun;
			total = 1;
		}
	}
	got = total;
	avail = 8 + 8u * (uint32_t)got;
	room = avail < alloc ? avail : alloc;
	b = scsi_data_in_alloc(cmd, room);
	if (!b) {
		if (luns != stack_luns)
			free(luns);
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		scsi_cmd_complete(cmd);
		return;
	}
	put_be32(b, 8u * (uint32_t)got);     /* LUN LIST LENGTH: the whole list */
	for (i = 0; i < got && 8 + 8u * (uint32_t)(i + 1) <= room; i++)
		encode_lun(b + 8 + 8 * i, luns[i]);
	if (i < got && 8 + 8u * (uint32_t)i < room) {
		uint8_t tmp[8];
		encode_lun(tmp, luns[i]);
		memcpy(b + 8 + 8 * i, tmp, room - (8 + 8u * (uint32_t)i));
	}
	if (luns != stack_luns)
		free(luns);
	scsi_data_in_done(cmd, avail, alloc);
}

/* ------------------------------------------------------------------------ */
/* REPORT SUPPORTED OPERATION CODES (SPC-4 6.35)                             */
/* ------------------------------------------------------------------------ */

/* Command timeouts descriptor (SPC-4 6.35.4), seconds. */
static uint8_t *put_timeouts(uint8_t *p)
{
	put_be16(p, 0x0a);
	p[2] = 0;
	p[3] = 0;
	put_be32(p + 4, 1);     /* NOMINAL COMMAND PROCESSING TIMEOUT */
	put_be32(p + 8, 30);    /* RECOMMENDED COMMAND TIMEOUT */
	return p + 12;
}

void spc_report_supported_opcodes(struct scsi_cmd *cmd)
{
	bool rctd = cmd->cdb[2] & 0x80;
	uint8_t opts = cmd->cdb[2] & 0x07;
	uint8_t req_op = cmd->cdb[3];
	uint16_t req_sa = get_be16(&cmd->cdb[4]);
	uint32_t alloc = get_be32(&cmd->cdb[6]);
	const struct scsi_opdesc *found = NULL;
	bool op_has_sa = false, op_known = false;
	uint8_t *b, *p;
	size_t i;

	if (opts > 3) {
		scsi_fail_cdb(cmd, 2, 2);
		return;
	}
	b = scsi_data_in_alloc(cmd, 4 + scsi_nr_opdescs * 20 + 64);
	if (!b) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		scsi_cmd_complete(cmd);
		return;
	}

	if (opts == 0) {
		/* All commands: 8-byte descriptors (+12 with RCTD). */
		p = b + 4;
		for (i = 0; i < scsi_nr_opdescs; i++) {
			const struct scsi_opdesc *d = &scsi_opdescs[i];
			p[0] = d->opcode;
			p[1] = 0;
			put_be16(p + 2, d->has_sa ? d->sa : 0);
			p[4] = 0;
			p[5] = (uint8_t)((rctd ? 0x02 : 0) | (d->has_sa ? 0x01 : 0)); /* CTDP, SERVACTV */
			put_be16(p + 6, d->cdb_len);
			p += 8;
			if (rctd)
				p = put_timeouts(p);
		}
		put_be32(b, (uint32_t)(p - b - 4));
		scsi_data_in_done(cmd, (uint32_t)(p - b), alloc);
		return;
	}

	for (i = 0; i < scsi_nr_opdescs; i++) {
		const struct scsi_opdesc *d = &scsi_opdescs[i];
		if (d->opcode != req_op)
			continue;
		op_known = true;
		op_has_sa |= d->has_sa;
		if (!d->has_sa || d->sa == req_sa)
			found = d;
	}
	/* 001b: opcode only - invalid for an opcode with service actions;
	 * 010b: opcode + SA - invalid for an opcode without them;
	 * 011b: either (SPC-4 r37 and later). */
	if (opts == 1 && op_has_sa) {
		scsi_fail_cdb(cmd, 3, -1);
		return;
	}
	if (opts == 2 && op_known && !op_has_sa) {
		scsi_fail_cdb(cmd, 3, -1);
		return;
	}
	if (!found) {
		b[1] = 0x01;                    /* SUPPORT: not supported */
		scsi_data_in_done(cmd, 4, alloc);
		return;
	}
	b[1] = (uint8_t)((rctd ? 0x80 : 0) | 0x03);   /* CTDP, SUPPORT: as per standard */
	put_be16(b + 2, found->cdb_len);
	memcpy(b + 4, found->usage, found->cdb_len);
	p = b + 4 + found->cdb_len;
	if (rctd)
		p = put_timeouts(p);
	scsi_data_in_done(cmd, (uint32_t)(p - b), alloc);
}

/* ------------------------------------------------------------------------ */
/* REPORT TARGET PORT GROUPS (SPC-4 6.36, 5.15 ALUA)                         */
/* ------------------------------------------------------------------------ */

#define RTPG_MAX_GROUPS 256

/* Implicit ALUA only (TPGS=01b): one target port group per iSCSI portal
 * group, group id = portal group tag = relative target port id, each group
 * holding that one target port, all active/optimized - every path is as
 * good as any other (one daemon, one store).  The fabric says which groups
 * lead to the LU (scsi_tpg_list_hook); without it, only the command's own. */
void spc_report_target_port_groups(struct scsi_cmd *cmd)
{
	uint8_t fmt = cmd->cdb[1] >> 5;
	uint32_t alloc = get_be32(&cmd->cdb[6]);
	uint16_t ids[RTPG_MAX_GROUPS];
	uint32_t hdr, off;
	int n = 0, i;
	uint8_t *b;

	if (fmt > 1) {                  /* 000b length only, 001b extended header */
		scsi_fail_cdb(cmd, 1, 7);
		return;
	}
	if (scsi_tpg_list_hook)
		n = scsi_tpg_list_hook(cmd, ids, RTPG_MAX_GROUPS);
	if (n > RTPG_MAX_GROUPS)
		n = RTPG_MAX_GROUPS;
	if (n <= 0) {
		ids[0] = cmd->nexus && cmd->nexus->target_port_id ? cmd->nexus->target_port_id : 1;
		n = 1;
	}
	hdr = fmt == 1 ? 8 : 4;
	b = scsi_data_in_alloc(cmd, hdr + 12u * (uint32_t)n);
	if (!b) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		scsi_cmd_complete(cmd);
		return;
	}
	off = hdr;
	for (i = 0; i < n; i++) {
		uint8_t *d = b + off;

		d[0] = 0x80 | 0x00;     /* PREF=1, ASYMMETRIC ACCESS STATE 0h active/optimized */
		d[1] = 0x01;            /* AO_SUP: the only state we support */
		put_be16(d + 2, ids[i]);
		d[5] = 0x00;            /* STATUS CODE: no status available */
		d[7] = 1;               /* TARGET PORT COUNT */
		put_be16(d + 8 + 2, ids[i]);   /* RELATIVE TARGET PORT IDENTIFIER */
		off += 12;
	}
	put_be32(b, off - 4);           /* RETURN DATA LENGTH */
	if (fmt == 1) {
		b[4] = 0x10;            /* FORMAT TYPE 001b */
		b[5] = 0;               /* IMPLICIT TRANSITION TIME: none happen */
	}
	scsi_data_in_done(cmd, off, alloc);
}
