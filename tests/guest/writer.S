/*
 * writer.S - a boot sector that keeps writing to its own disk, for the
 * live-migration end-to-end test (tests/integration/test_migrate_writer.sh).
 *
 * Why a boot sector: a stock guest kernel hangs early under this machine's
 * /dev/kvm (see /work/shared/reference/anchors.md), but firmware runs fine.
 * SeaBIOS boots sector 0 of the VM's disk (the iSCSI LUN or NFS file on the
 * appliance) and gives us BIOS disk services on top of the emulated disk
 * (virtio-blk or IDE), which is all a writing guest needs.
 *
 * What it does (16-bit real mode, loaded at 0:7c00 by the BIOS, DL = drive):
 *   for n = 1, 2, ...:
 *       read LBA LOG0 + n - 1: must be zeros      (else status 5)
 *       write record(n) there                     (the log: one sector per n)
 *       read LBA SUPER: must hold record(n - 1)   (else status 6)
 *       write record(n) there                     (rewritten every time)
 *       STATE.last = n                            (both writes completed)
 *   until a key is pressed (QMP send-key: the test's stop signal) or n would
 *   pass MAXSEQ; then it sets STATE.status and halts.
 * The reads catch, in the guest, what no check of the final disk can: a
 * second copy of this VM writing the same disk (a split brain, or a source
 * resumed after its destination ran): whichever copy is behind finds the
 * other's records where its own have not been written yet.
 * I/O uses INT 13h AH=42h/43h (extended read/write, EDD 3.0 disk address
 * packet), at most WPT records per period of the PIT's counter 0 (~36 Hz;
 * 0 = unpaced): the pace keeps a fast host from filling the disk before
 * the test is done.  Everything is polled (the 8042 for the key, the PIT for
 * the pace): under this machine's KVM the guest gets no interrupts.
 *
 * A record (512 bytes, little endian):
 *   0  "RSWRITER"   magic
 *   8  u32 nonce_lo, u32 nonce_hi   per-run nonce (old runs and other data
 *                                    can never be mistaken for this run's)
 *   16 u32 seq      n
 *   20 u32 lba      where it was meant to land (catches a misdirected write)
 *   24 u32 seq x 121, then u32 ~seq at 508  (catches a torn write)
 *
 * STATE (guest-physical 0x7e00, read by the test with the monitor's
 * `xp /4wx 0x7e00`):
 *   +0 u32 last     highest n whose two writes both completed
 *   +4 u32 status   0 booting, 1 writing, 2 stopped by a key, 3 MAXSEQ
 *                   reached, 4 disk error, 5 the log sector of record
 *                   last + 1 was already written, 6 the super sector did
 *                   not hold record last
 *   +8 u32 error    4: the INT 13h status (AH); 5, 6: the record number
 *                   the sector held (its bytes 16..19); else 0
 *   +12 u32 magic   0x52535754 ("TWSR") once STATE is valid
 * Every write the disk holds must then be explained by this program: LBA
 * LOG0 + n - 1 holds record n for n = 1..last, SUPER holds record last, and
 * nothing else is written.  (Stopped by a key, no write is in flight; a VM
 * stopped from outside may also have completed the writes of last + 1
 * without the guest having seen it.)  A replayed old write shows as an older
 * record in SUPER, a lost one as a zero log sector, a duplicate or stray
 * one beyond the log's end.
 *
 * Build (the test does this in its temp dir; gcc/clang + binutils only):
 *   cc -m32 -c -x assembler-with-cpp -DNONCE_LO=... -DNONCE_HI=... \
 *      [-DWPT=n -DMAXSEQ=n -DSUPER=lba -DLOG0=lba] writer.S -o writer.o
 *   ld -m elf_i386 -Ttext 0x7c00 --oformat binary writer.o -o writer.bin
 * and put writer.bin (512 bytes, ends in 55 aa) at sector 0 of the disk.
 */
#ifndef NONCE_LO
#define NONCE_LO 0x01234567
#endif
#ifndef NONCE_HI
#define NONCE_HI 0x89abcdef
#endif
#ifndef WPT
#define WPT 8           /* records per PIT period: 8 x 36.4 = ~290/s at most */
#endif
#ifndef MAXSEQ
#define MAXSEQ 60000    /* the log must fit in the disk: LBA LOG0 + MAXSEQ - 1 */
#endif
#ifndef SUPER
#define SUPER 1         /* LBA of the super sector */
#endif
#ifndef LOG0
#define LOG0 2          /* LBA of record 1 */
#endif
#define STATE 0x7e00
#define BUF 0x8000      /* the record being written */
#define RBUF 0x8200     /* a sector read back */

	.code16
	.text
	.globl _start
_start:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw $0x7c00, %sp
	ljmp $0, $go            /* CS:IP = 0:7cxx whatever the BIOS used */
go:
	sti
	cld
	movb %dl, drive
	/* STATE: nothing written yet */
	movl $0, STATE
	movl $0, STATE + 4
	movl $0, STATE + 8
	movl $0x52535754, STATE + 12
	/* the constant part of the record */
	movw $BUF, %di
	movl $0x52575352, (%di)  /* "RSWR" */
	movl $0x52455449, 4(%di) /* "ITER" */
	movl $NONCE_LO, 8(%di)
	movl $NONCE_HI, 12(%di)
	movl $1, STATE + 4      /* writing */
	call pit
	movw %ax, lastpit

loop:
	/* a key pressed?  Either the BIOS's IRQ 1 handler took it (INT 16h
	 * AH=01h: ZF clear if one is waiting), or, where IRQs do not reach
	 * us (see pace below), it waits in the 8042's output buffer. */
	movb $0x01, %ah
	int $0x16
	jnz 8f
	inb $0x64, %al          /* 8042 status: bit 0 output buffer full */
	testb $1, %al
	jz 1f
	inb $0x60, %al
8:	movl $2, STATE + 4
	jmp halt
1:	movl STATE, %eax
	incl %eax
	cmpl $MAXSEQ, %eax
	jbe 2f
	movl $3, STATE + 4
	jmp halt
2:
#if WPT > 0
	/* pace: at most WPT iterations per wrap of PIT counter 0 (reloads every
	 * 65536 counts of 1.193 MHz, twice that often in mode 3).  Polled, not
	 * interrupt driven: this machine's KVM delivers no IRQ to a guest that
	 * only ever enables interrupts for a few instructions. */
	cmpw $WPT, count
	jb 4f
3:	call pit
	cmpw lastpit, %ax
	movw %ax, lastpit
	jbe 3b                  /* still counting down: same period */
	movw $0, count
4:	incw count
#endif
	/* record(n), n = STATE.last + 1 in EAX */
	movl STATE, %eax
	incl %eax
	movw $BUF + 16, %di
	movl %eax, (%di)        /* seq */
	movw $BUF + 24, %di
	movw $121, %cx
	rep stosl               /* seq x 121 */
	notl %eax
	movl %eax, (%di)        /* ~seq at 508 */
	notl %eax
	/* the log sector: nobody may have written it yet */
	addl $LOG0 - 1, %eax
	pushl %eax
	call readback
	movw $RBUF, %di
	movw $128, %cx
	xorl %eax, %eax
	repe scasl              /* ZF clear: a non-zero dword */
	movb $5, %al
	jne found
	popl %eax
	call write
	/* the super sector: it must hold record n - 1 (n = 1: nothing) */
	movl $SUPER, %eax
	call readback
	movl STATE, %eax        /* n - 1 */
	movw $RBUF, %di
	testl %eax, %eax
	jnz 1f
	movw $128, %cx
	repe scasl
	jmp 2f
1:	cmpl %eax, RBUF + 16
	jne 2f
	movw $BUF, %si          /* magic and nonce */
	movw $4, %cx
	repe cmpsl
2:	movb $6, %al
	jne found
	movl $SUPER, %eax
	call write
	incl STATE              /* both completed */
	jmp loop

/* found: the sector just read back is not what this run left there:
 * status AL (5 log, 6 super), error = the record number it holds */
found:
	movzbl %al, %eax
	movl %eax, STATE + 4
	movl RBUF + 16, %eax
	movl %eax, STATE + 8
	jmp halt

/* write: the record to LBA EAX (its lba field set here) */
write:
	movl %eax, BUF + 20
	movw $BUF, %bx
	movb $0x43, %cl         /* EDD extended write */
	jmp xfer
/* readback: LBA EAX into RBUF */
readback:
	movw $RBUF, %bx
	movb $0x42, %cl         /* EDD extended read */
/* xfer: one sector at LBA EAX, buffer BX, INT 13h function CL; on error: halt */
xfer:
	movl %eax, dap_lba
	movl $0, dap_lba + 4
	movw $1, dap_count
	movw %bx, dap_buf
	movw $dap, %si
	movb drive, %dl
	movb %cl, %ah
	movb $0x00, %al         /* (write: no verify) */
	int $0x13
	jc 6f
	ret
6:	movzbl %ah, %eax
	movl %eax, STATE + 8
	movl $4, STATE + 4
halt:
	sti
7:	hlt
	jmp 7b

/* pit: AX = PIT counter 0 (latched) */
pit:
	movb $0x00, %al         /* counter 0, latch command */
	outb %al, $0x43
	inb $0x40, %al
	movb %al, %ah
	inb $0x40, %al
	xchgb %al, %ah
	ret

	.balign 4
/* EDD disk address packet (size 16) */
dap:	.byte 16, 0
dap_count:
	.word 1
dap_buf:
	.word BUF, 0            /* buffer offset, segment */
dap_lba:
	.long 0, 0
drive:	.byte 0x80
	.balign 2
lastpit:
	.word 0
count:	.word 0

	.org 510
	.byte 0x55, 0xaa
