#ifndef RS_VERSION_H
#define RS_VERSION_H
#define RINGSTOR_VERSION "0.1.0"
#endif
