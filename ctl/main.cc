// moecapctl entry point.
#include <iostream>

#include "ctl/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return moecap::ctl::RunCtl(args, moecap::ctl::CommandIo{std::cout, std::cerr});
}
