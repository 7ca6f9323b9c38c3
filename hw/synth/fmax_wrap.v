// Timing wrapper for nextpnr: atomik_top's ~400 AXI pins do not fit an iCE40 package, so its
// inputs come from a shift register fed by one pin and its outputs are captured into a shift
// register read out on one pin. Every path of atomik_top stays register to register.
`default_nettype none
module fmax_wrap #(
    parameter integer SLOTS = 16,
    parameter integer LANES = 1
) (
    input  wire clk,
    input  wire rst,
    input  wire sin,
    input  wire cap,
    output wire sout
);
    localparam integer IN_W  = 19 + 3 + 1 + 64 + 8 + 1 + 1 + 19 + 3 + 1 + 1
                             + 4 + 19 + 8 + 3 + 2 + 1 + 64*LANES + 8*LANES + 1 + 1 + 1
                             + 4 + 19 + 8 + 3 + 2 + 1 + 1;
    localparam integer OUT_W = 1 + 1 + 2 + 1 + 1 + 64 + 2 + 1
                             + 1 + 1 + 4 + 2 + 1 + 1 + 4 + 64*LANES + 2 + 1 + 1;
    reg [IN_W-1:0]  in_sr;
    reg [OUT_W-1:0] out_sr;
    wire [OUT_W-1:0] outs;
    always @(posedge clk) begin
        in_sr  <= {in_sr[IN_W-2:0], sin};
        out_sr <= cap ? outs : {1'b0, out_sr[OUT_W-1:1]};
    end
    assign sout = out_sr[0];

    atomik_top #(.SLOTS(SLOTS), .LANES(LANES)) dut (
        .clk(clk), .rst(rst),
        .s_axil_awaddr(in_sr[18:0]), .s_axil_awprot(in_sr[21:19]), .s_axil_awvalid(in_sr[22]),
        .s_axil_wdata(in_sr[86:23]), .s_axil_wstrb(in_sr[94:87]), .s_axil_wvalid(in_sr[95]),
        .s_axil_bready(in_sr[96]), .s_axil_araddr(in_sr[115:97]), .s_axil_arprot(in_sr[118:116]),
        .s_axil_arvalid(in_sr[119]), .s_axil_rready(in_sr[120]),
        .s_axi_awid(in_sr[124:121]), .s_axi_awaddr(in_sr[143:125]), .s_axi_awlen(in_sr[151:144]),
        .s_axi_awsize(in_sr[154:152]), .s_axi_awburst(in_sr[156:155]), .s_axi_awvalid(in_sr[157]),
        .s_axi_wdata(in_sr[158 +: 64*LANES]), .s_axi_wstrb(in_sr[158+64*LANES +: 8*LANES]),
        .s_axi_wlast(in_sr[158+72*LANES]), .s_axi_wvalid(in_sr[159+72*LANES]),
        .s_axi_bready(in_sr[160+72*LANES]),
        .s_axi_arid(in_sr[161+72*LANES +: 4]), .s_axi_araddr(in_sr[165+72*LANES +: 19]),
        .s_axi_arlen(in_sr[184+72*LANES +: 8]), .s_axi_arsize(in_sr[192+72*LANES +: 3]),
        .s_axi_arburst(in_sr[195+72*LANES +: 2]), .s_axi_arvalid(in_sr[197+72*LANES]),
        .s_axi_rready(in_sr[198+72*LANES]),
        .s_axil_awready(outs[0]), .s_axil_wready(outs[1]), .s_axil_bresp(outs[3:2]),
        .s_axil_bvalid(outs[4]), .s_axil_arready(outs[5]), .s_axil_rdata(outs[69:6]),
        .s_axil_rresp(outs[71:70]), .s_axil_rvalid(outs[72]),
        .s_axi_awready(outs[73]), .s_axi_wready(outs[74]), .s_axi_bid(outs[78:75]),
        .s_axi_bresp(outs[80:79]), .s_axi_bvalid(outs[81]), .s_axi_arready(outs[82]),
        .s_axi_rid(outs[86:83]), .s_axi_rdata(outs[87 +: 64*LANES]),
        .s_axi_rresp(outs[87+64*LANES +: 2]), .s_axi_rlast(outs[89+64*LANES]),
        .s_axi_rvalid(outs[90+64*LANES])
    );
endmodule
`default_nettype wire
