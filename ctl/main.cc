// stewardctl: the operator's command line; see ctl/ctl.h.
#include "ctl/ctl.h"

int main(int argc, char** argv) { return steward::ctl::Main(argc, argv); }
