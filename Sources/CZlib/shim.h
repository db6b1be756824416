#ifndef STREAMGATE_CZLIB_SHIM_H
#define STREAMGATE_CZLIB_SHIM_H

#include <zlib.h>

#endif
